# The local Kubernetes control plane for tests (hack/controlplane/, docs/control-plane.md).
CONTROLPLANE := hack/controlplane
CLUSTER_DIR ?= .cluster

.PHONY: controlplane cluster-up cluster-down

controlplane: ## build (or reuse from ~/.cache/modelops/bin) etcd, kube-*, kubectl, kwok and helm at the pinned versions
	nice -n 10 $(CONTROLPLANE)/build.sh

cluster-up: controlplane ## start a control plane with kwok nodes; kubeconfig in .cluster/kubeconfig
	$(CONTROLPLANE)/cluster-up.sh $(CLUSTER_DIR)

cluster-down: ## stop the control plane started by cluster-up and remove .cluster/
	$(CONTROLPLANE)/cluster-down.sh $(CLUSTER_DIR)
