# training-job: benchmark and the stage commands' tests.
.PHONY: bench-training test-training check-gpu-requirements

bench-training: venv ## trainer samples/s vs bare model.fit, and the compression table → docs/bench-training.md
	nice -n 10 $(PY) training-job/bench/bench_training.py --out docs/bench-training.md

test-training: venv ## the training-job's unit and component tests
	$(PY) -m pytest tests/unit/test_training_*.py tests/component/test_training_*.py $(PYTEST_ARGS)

check-gpu-requirements: venv ## resolve the GPU training image's requirements against PyPI (metadata only, no multi-GB download)
	$(PY) -m pip install --dry-run --ignore-installed --quiet -r training-job/requirements-gpu.txt
