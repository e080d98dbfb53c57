.PHONY: bench bench-operator
BENCH_OPERATOR_COUNT ?= 200

bench: bench-training bench-serving bench-operator ## every benchmark; each writes its table into docs/

bench-operator: venv controlplane ## 200 ModelDeployments at once on the local control plane (docs/bench-operator.md)
	nice -n 5 $(PY) hack/bench/operator_scale.py $(BENCH_OPERATOR_COUNT) docs/bench-operator.md
