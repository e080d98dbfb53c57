# training-job: benchmark and the stage commands' tests.
.PHONY: bench-training test-training check-gpu-requirements

bench-training: venv ## trainer samples/s vs bare model.fit, and the compression table → docs/bench-training.md
	nice -n 10 $(PY) training-job/bench/bench_training.py --out docs/bench-training.md

test-training: venv ## the training-job's unit and component tests
	$(PY) -m pytest tests/unit/test_training_*.py tests/component/test_training_*.py $(PYTEST_ARGS)

# Constrained by the lock as Dockerfile.gpu installs them, or pip could pick versions the image never gets.
# About 20 s: pip reads the wheels' metadata (PEP 658) and downloads none of the multi-GB CUDA wheels.
check-gpu-requirements: venv ## resolve the GPU training image's requirements against PyPI (part of make test)
	$(PY) -m pip install --dry-run --ignore-installed --quiet -c requirements.lock -r training-job/requirements-gpu.txt
