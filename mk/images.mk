# Images built on this machine without Docker or a registry (hack/images/, docs/e2e.md "Images"): buildah
# from Debian's packages builds the project's Dockerfiles on a Python base made from Debian's packages.
# `make images` (mk/release.mk) stays the Docker path for users.
.PHONY: images-local

images-local: venv ## build the three images with buildah into OCI archives under ~/.cache/modelops/images (prints their paths)
	nice -n 10 hack/images/build-all.sh
