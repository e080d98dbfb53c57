# The real node next to the local control plane (hack/node/, docs/e2e.md "Real node").
NODE := hack/node

.PHONY: node

node: ## build (or reuse from ~/.cache/modelops/node) kubelet, kube-proxy, containerd, CoreDNS, metrics-server and the node's images
	nice -n 10 $(NODE)/build.sh

