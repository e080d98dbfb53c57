# modelops — one entry point for people and CI.
# Each part of the tree owns a fragment in mk/*.mk; this file holds what they share.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CACHE_DIR ?= $(HOME)/.cache/modelops
export PIP_CACHE_DIR ?= $(CACHE_DIR)/pip
# The venv is rebuilt whenever the lock file changes.
VENV_STAMP := $(VENV)/.stamp-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-16)
PACKAGES := contracts training-job serving-image operator

.PHONY: help venv test e2e test-unit clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## create .venv with every pinned dependency and the project's packages

$(VENV_STAMP): requirements.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade 'pip==26.3'
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation $(foreach p,$(PACKAGES),-e ./$(p))
	touch $@

include mk/*.mk

# Two sessions: the real node (tests/e2e) starts only after the rest has finished, so the two never
# compete for the machine's two cores. Each session fails on "no tests collected" (pytest exit 5).
# check-gpu-requirements stands in for building the GPU image, which CI never does (it needs PyPI).
test: venv check-gpu-requirements controlplane node images-local ## run the whole suite (unit, component, integration, then e2e on the real node)
	$(PY) -m pytest --ignore=tests/e2e $(PYTEST_ARGS)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

e2e: venv controlplane node images-local ## only the end-to-end stage: the real node, our images, the whole pipeline in containers
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

test-unit: venv controlplane ## run only the fast unit tests (the chart tests render with the pinned helm)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

clean: ## remove local state (not the shared cache)
	rm -rf $(VENV) .cluster .pytest_cache
