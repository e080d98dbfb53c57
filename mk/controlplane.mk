# The local Kubernetes control plane for tests (hack/controlplane/, docs/control-plane.md).
CONTROLPLANE := hack/controlplane
CLUSTER_DIR ?= .cluster

.PHONY: controlplane cluster-up cluster-down

controlplane: ## build (or reuse from ~/.cache/modelops/bin) etcd, kube-*, kubectl, kwok and helm at the pinned versions
	nice -n 10 $(CONTROLPLANE)/build.sh

cluster-up: controlplane $(if $(REAL_NODE),node) ## start a control plane with kwok nodes (REAL_NODE=1: one real node instead, needs root); kubeconfig in .cluster/kubeconfig
	$(if $(REAL_NODE),$(NODE)/cluster-up.sh,$(CONTROLPLANE)/cluster-up.sh) $(CLUSTER_DIR)

cluster-down: ## stop what cluster-up started (a real node included, host settings restored) and remove .cluster/
	$(CONTROLPLANE)/cluster-down.sh $(CLUSTER_DIR)
