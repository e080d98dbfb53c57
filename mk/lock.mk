.PHONY: lock
lock: ## re-resolve requirements-dev.txt into requirements.lock (from the current .venv)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
