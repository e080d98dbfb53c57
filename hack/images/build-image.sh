#!/usr/bin/env bash
# Builds one of the project's Dockerfiles with buildah into an OCI archive and prints the archive's path.
# Usage: build-image.sh DOCKERFILE NAME:TAG BASE_IMAGE
# The archive is keyed by everything the build reads (image_key.py): with the same inputs a run only prints
# the path. The build context is the repository root, as for `make images`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

(($# == 3)) || { echo "usage: $0 DOCKERFILE NAME:TAG BASE_IMAGE" >&2; exit 2; }
dockerfile="$1" ref="$2" base="$3"
[[ -f "$dockerfile" ]] || { echo "DOCKERFILE: no such file: $dockerfile" >&2; exit 2; }
[[ "$ref" == *:* && "${ref##*:}" != */* ]] || { echo "NAME:TAG: no tag in $ref" >&2; exit 2; }

ensure_tools
lock_images_dir
base_id="$(builder inspect --type image --format '{{.FromImageID}}' "$base")" ||
  { echo "BASE_IMAGE: $base is not in the builder's storage (hack/images/base.sh puts it there)" >&2; exit 2; }
key="$(python3 "$IMAGES_HACK_DIR/image_key.py" image "$dockerfile" --context "$REPO_ROOT" \
  --extra "$IMAGES_HACK_DIR/build-image.sh" --extra "$IMAGES_HACK_DIR/lib.sh" \
  --value "base=$base_id" --value "ref=$ref")"
name="${ref%:*}"
stem="${name##*/}-${ref##*:}"
archive="$IMAGES_DIR/$stem-$key.oci.tar"
if [[ -f "$archive" ]]; then
  touch "$archive"   # most recently used: the last archive prune_archives removes
  echo "$ref: up to date ($archive)" >&2
  echo "$archive"
  exit 0
fi

echo "$ref: building from $dockerfile on $base" >&2
started=$SECONDS
fill_wheelhouse "$(dirname "$dockerfile")"
wheels_done=$SECONDS
pip_conf="$(mktemp)"
layout="$archive.partial.d"
trap 'rm -rf "$pip_conf" "$layout" "$archive.partial"' EXIT
write_build_pip_conf "$pip_conf"
# --network=none: pip installs from the wheelhouse alone, so the image depends on no live index.
builder bud --layers --network=none --build-arg "BASE_IMAGE=$base" --label "io.modelops.inputs-key=$key" \
  --secret "id=pip.conf,src=$pip_conf" "$(pip_cache_volume)" -f "$dockerfile" -t "$ref" "$REPO_ROOT" >&2
build_done=$SECONDS
# An OCI layout first, so the index can also carry containerd's own name annotation (import and
# hack/node/load-image.sh read it), then one tar of it. Every push compresses every layer again: zstd
# (containerd reads it since 1.5) takes a third of gzip's time on the 2.4 GiB TensorFlow layer, and is smaller.
rm -rf "$layout"
builder push -q --compression-format zstd "$ref" "oci:$layout:$ref"
python3 - "$layout/index.json" "$ref" <<'PY'
import json, sys
path, ref = sys.argv[1:]
index = json.load(open(path))
for manifest in index["manifests"]:
    manifest.setdefault("annotations", {})["io.containerd.image.name"] = ref
json.dump(index, open(path, "w"))
PY
tar -C "$layout" -cf "$archive.partial" oci-layout index.json blobs
rm -rf "$layout"
mv "$archive.partial" "$archive"
prune_archives "$stem" 3   # the training archive is ~850 MiB
echo "$ref: built in $((SECONDS - started)) s (wheelhouse $((wheels_done - started)) s, buildah bud" \
  "$((build_done - wheels_done)) s, archive $((SECONDS - build_done)) s): $archive" >&2
echo "$archive"
