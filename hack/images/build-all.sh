#!/usr/bin/env bash
# Builds (or reuses) the operator, training and serving images from the project's Dockerfiles on the
# locally built Python base, with buildah; prints one OCI archive path per line (stdout), the image
# references they carry (images.env) on stderr. Importing them into the node's containerd is
# hack/node/load-image.sh's job. A warm run with unchanged inputs builds nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../../images.env
source "$REPO_ROOT/images.env"

ensure_tools
lock_images_dir
base="$("$IMAGES_HACK_DIR/base.sh")"
for pair in "operator/Dockerfile=$OPERATOR_IMAGE" "training-job/Dockerfile=$TRAINING_IMAGE" \
  "serving-image/Dockerfile=$SERVING_IMAGE"; do
  "$IMAGES_HACK_DIR/build-image.sh" "$REPO_ROOT/${pair%%=*}" "${pair#*=}:$IMAGE_TAG" "$base"
done
