# Shipping: the Helm chart's CRD copy, the rendered install.yaml, the images and the kind path
# (docs/install.md). Image names and the tag come from images.env, their one source.
include images.env

CHART := manifests/helm/modelops
# Rendering install.yaml uses the pinned Helm (its output is committed); deploying takes any helm.
PINNED_HELM = $(shell hack/controlplane/bin-dir.sh)/helm
HELM ?= $(shell command -v helm 2>/dev/null || echo '$(PINNED_HELM)')
DOCKER ?= docker
KIND ?= kind
KUBECTL ?= kubectl
KIND_CLUSTER ?= modelops
RELEASE ?= modelops
RELEASE_NAMESPACE ?= modelops-system
KIND_DEMO_EXAMPLE ?= examples/digits-classifier.yaml
KIND_DEMO_NAMESPACE ?= modelops-demo
CHECKOV_VENV := $(CACHE_DIR)/checkov-3.3.30

OPERATOR_REF := $(OPERATOR_IMAGE):$(IMAGE_TAG)
TRAINING_REF := $(TRAINING_IMAGE):$(IMAGE_TAG)
TRAINING_GPU_REF := $(TRAINING_GPU_IMAGE):$(IMAGE_TAG)
SERVING_REF := $(SERVING_IMAGE):$(IMAGE_TAG)

.PHONY: manifests images kind-up kind-load deploy kind-demo scan

# The chart's crds/ holds symlinks to crds/ (Helm follows them in lint, template, install and package).
manifests: controlplane ## regenerate manifests/install.yaml from the chart (after any chart or CRD change)
	manifests/render-install.sh $(PINNED_HELM) > manifests/install.yaml

images: ## build the operator, training (CPU and GPU) and serving images (needs Docker; context is the repository root)
	$(DOCKER) build -f operator/Dockerfile -t $(OPERATOR_REF) .
	$(DOCKER) build -f training-job/Dockerfile -t $(TRAINING_REF) .
	$(DOCKER) build -f training-job/Dockerfile.gpu -t $(TRAINING_GPU_REF) .
	$(DOCKER) build -f serving-image/Dockerfile -t $(SERVING_REF) .

kind-up: ## create the kind cluster "modelops" (KIND_CLUSTER; kept if it exists)
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || $(KIND) create cluster --name $(KIND_CLUSTER) --wait 180s

kind-load: ## load the three images built by `make images` into the kind cluster
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(OPERATOR_REF) $(TRAINING_REF) $(SERVING_REF)

# Helm installs crds/ only once and never upgrades them, so deploy applies them itself every time
# (--force-conflicts: fields Helm applied first are taken over) and tells Helm to leave them alone.
deploy: ## install or upgrade the chart in the current kubectl context with the local image tags
	$(KUBECTL) apply --server-side --force-conflicts -f $(CHART)/crds/
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(RELEASE_NAMESPACE) --create-namespace --skip-crds \
	  --set image.repository=$(OPERATOR_IMAGE) --set image.tag=$(IMAGE_TAG) \
	  --set defaults.trainingImage=$(TRAINING_REF) --set defaults.servingImage=$(SERVING_REF) \
	  --set defaults.trainingGpuImage=$(TRAINING_GPU_REF) \
	  --wait --timeout 5m

kind-demo: ## apply an example (KIND_DEMO_EXAMPLE) in namespace modelops-demo and wait until it is Ready
	$(KUBECTL) create namespace $(KIND_DEMO_NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) apply -n $(KIND_DEMO_NAMESPACE) -f manifests/kind/models-pvc.yaml
	$(KUBECTL) apply -n $(KIND_DEMO_NAMESPACE) -f $(KIND_DEMO_EXAMPLE)
	$(KUBECTL) wait -n $(KIND_DEMO_NAMESPACE) -f $(KIND_DEMO_EXAMPLE) --for=condition=Ready --timeout=30m
	$(KUBECTL) get -n $(KIND_DEMO_NAMESPACE) -f $(KIND_DEMO_EXAMPLE)

# Deliberate exceptions: CKV_K8S_11 no CPU limit (a throttled operator lags on events; memory is capped),
# CKV_K8S_43 tags not digests (images are built locally, `make images`), CKV_K8S_38 the operator needs its
# ServiceAccount token (it is a Kubernetes client), CKV_K8S_15 IfNotPresent (kind-loaded images have no registry).
CHECKOV_SKIPS := CKV_K8S_11,CKV_K8S_43,CKV_K8S_38,CKV_K8S_15

scan: manifests ## checkov on install.yaml (own venv under ~/.cache/modelops: checkov's pins clash with ours)
	test -x $(CHECKOV_VENV)/bin/checkov || { $(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/pip install -q 'checkov==3.3.30'; }
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework kubernetes \
	  --skip-check $(CHECKOV_SKIPS) -f manifests/install.yaml
