.PHONY: demo
DEMO ?= examples/digits-classifier.yaml
DEMO_STORAGE ?= out/storage

demo: venv ## run the sample ModelDeployment end to end on this machine (train, gate, compress, serve, predict)
	$(VENV)/bin/modelops run $(DEMO) --storage $(DEMO_STORAGE)
