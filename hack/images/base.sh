#!/usr/bin/env bash
# Builds (or reuses) the Python base image from Debian's packages, for machines that cannot pull
# python:3.11-slim-bookworm: debootstrap minbase + bookworm's python3.11, pip upgraded to the version
# `make venv` uses, and no PEP 668 marker (the public image has none, our Dockerfiles pip-install as root).
# Prints the image reference for `--build-arg BASE_IMAGE=...`; the image is also kept as an OCI archive
# keyed by a hash of this script and the Debian settings, so a warm run builds nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_RELEASE="${DEBIAN_RELEASE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_PIP_VERSION=26.3   # the pip `make venv` installs, so host and builds share one pip cache format
# The uid/gid the Dockerfiles run as (USER 65532:65532): a named user with a home, as in distroless.
NONROOT_ID=65532

ensure_tools
lock_images_dir
key="$(python3 "$IMAGES_HACK_DIR/image_key.py" files "$IMAGES_HACK_DIR/base.sh" \
  --value "release=$DEBIAN_RELEASE" --value "mirror=$DEBIAN_MIRROR")"
ref="localhost/modelops/python-base:$key"
archive="$IMAGES_DIR/python-base-$key.oci.tar"

if [[ -f "$archive" ]]; then
  touch "$archive"
  # The archive outlives the builder's storage (which may be reset): bring the image back from it.
  builder inspect --type image "$ref" >/dev/null 2>&1 || builder tag "$(builder pull -q "oci-archive:$archive")" "$ref"
  echo "$ref"
  exit 0
fi

echo "building the Python base image $ref (debootstrap $DEBIAN_RELEASE)" >&2
ctr="$(builder from --name "python-base-$key-$$" scratch)"
trap 'builder rm "$ctr" >/dev/null 2>&1 || true' EXIT
root="$(builder mount "$ctr")"
log="$IMAGES_DIR/python-base-$key.debootstrap.log"
debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
  "$DEBIAN_RELEASE" "$root" "$DEBIAN_MIRROR" >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
rm -f "$log"
# debootstrap copies the host's resolver and name; the runtime provides its own. No package caches.
rm -f "$root"/etc/resolv.conf "$root"/etc/hostname "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/*
echo "nonroot:x:$NONROOT_ID:$NONROOT_ID:nonroot:/home/nonroot:/usr/sbin/nologin" >>"$root/etc/passwd"
echo "nonroot:x:$NONROOT_ID:" >>"$root/etc/group"
install -d -o "$NONROOT_ID" -g "$NONROOT_ID" -m 0755 "$root/home/nonroot"
builder umount "$ctr" >/dev/null

# Debian's pip predates the system-bundle default, hence --cert. No cache: it would leave /root/.cache behind.
builder run --network=host "$(ca_volume)" "$ctr" -- python3 -m pip install -q --disable-pip-version-check \
  --no-cache-dir --cert /etc/ssl/certs/ca-certificates.crt "pip==$BASE_PIP_VERSION" >&2
builder config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd python3 --workingdir / --label "io.modelops.base-key=$key" "$ctr"
builder commit -q --rm "$ctr" "$ref" >/dev/null
trap - EXIT
tmp="$archive.partial"
builder push -q "$ref" "oci-archive:$tmp:$ref"
mv "$tmp" "$archive"
prune_archives python-base 2
# Layers cached on an older base are of no use to this one: untagged ones go, or the storage only grows.
builder rmi --prune >/dev/null 2>&1 || true
echo "$ref"
