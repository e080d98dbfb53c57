# Shared by the image scripts: where the cache lives, the builder's private storage, and what pip inside
# a build needs to reach this machine's package index (given per RUN step, never committed into a layer).
# shellcheck shell=bash
IMAGES_HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$IMAGES_HACK_DIR/../.." && pwd)"
MODELOPS_CACHE="${MODELOPS_CACHE:-$HOME/.cache/modelops}"
IMAGES_DIR="${MODELOPS_IMAGES_DIR:-$MODELOPS_CACHE/images}"
PIP_CACHE="${MODELOPS_PIP_CACHE:-$MODELOPS_CACHE/pip}"
# A storage of our own: nothing else on the machine sees these images, and removing the directory resets it.
BUILDAH_ROOT="$MODELOPS_CACHE/buildah"

BUILDAH=(buildah --root "$BUILDAH_ROOT/storage" --runroot "$BUILDAH_ROOT/run" --storage-driver overlay)
builder() {
  "${BUILDAH[@]}" "$@"
}

# Keeps the KEEP most recently used archives named STEM-<key>.oci.tar. Several checkouts share the cache
# with different sources (so different keys): deleting all but the newest would make them rebuild in turn.
prune_archives() {
  local stem="$1" keep="$2"
  find "$IMAGES_DIR" -maxdepth 1 -name "$stem-*.oci.tar" -printf '%T@ %p\n' | sort -rn | tail -n +"$((keep + 1))" |
    cut -d' ' -f2- | xargs -r rm -f
}

# CI starts from a fresh machine: the builder comes from Debian's packages, installed on first use.
ensure_tools() {
  local missing=() tool
  for tool in buildah skopeo debootstrap zstd; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  ((${#missing[@]} == 0)) && return 0
  echo "installing ${missing[*]} from Debian's packages" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    "${missing[@]}" >&2
}

# Concurrent runs (several checkouts, parallel make) wait for the first instead of building twice.
# The holder exports MODELOPS_IMAGES_LOCKED so the scripts it calls do not wait for themselves.
lock_images_dir() {
  mkdir -p "$IMAGES_DIR" "$PIP_CACHE" "$BUILDAH_ROOT"
  [[ -z "${MODELOPS_IMAGES_LOCKED:-}" ]] || return 0
  exec 8>"$IMAGES_DIR/.lock"
  flock 8
  export MODELOPS_IMAGES_LOCKED=1
}

# The CA bundle the host's pip trusts: the package proxy's certificate is in it, Debian's bundle lacks it.
host_pip_cert() {
  local cert="${PIP_CERT:-}"
  [[ -n "$cert" ]] || cert="$(python3 -m pip config get global.cert 2>/dev/null || true)"
  [[ -n "$cert" ]] || cert=/etc/ssl/certs/ca-certificates.crt
  [[ -r "$cert" ]] || { echo "pip's CA bundle $cert is not readable (set PIP_CERT)" >&2; return 1; }
  echo "$cert"
}

# buildah options that give RUN steps the host's CA bundle (the package proxy's certificate is in it):
# the target exists in the image (Debian's bundle), so the volume hides it while a step runs and leaves
# nothing behind in a layer. pip >= 24.2 trusts the system bundle; older pips take `--cert` with this path.
ca_volume() {
  echo "--volume=$(host_pip_cert):/etc/ssl/certs/ca-certificates.crt:ro"
}

# The shared pip cache over the Dockerfiles' `RUN --mount=type=cache` target, holding the wheelhouse.
pip_cache_volume() {
  echo "--volume=$PIP_CACHE:/root/.cache/pip"
}
# This machine's package proxy strips the headers pip's HTTP cache needs, so pip caches no download:
# the wheels are kept as files instead, downloaded by the host's pip (which trusts the proxy).
WHEELHOUSE="$PIP_CACHE/wheelhouse"

# Downloads (once) what a package directory's requirements resolve to under the lock, plus the build
# backend its pyproject.toml and contracts' name, for the build's offline pip.
fill_wheelhouse() {
  local package_dir="$1" pip=("$REPO_ROOT/.venv/bin/python" -m pip) backends
  [[ -x "${pip[0]}" ]] || pip=(python3 -m pip)
  "${pip[0]}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    { echo "${pip[0]} is not Python 3.11: its wheels would not fit the images' python3.11" >&2; return 1; }
  backends="$(python3 -c 'import sys, tomllib
for f in sys.argv[1:]: print("\n".join(tomllib.load(open(f, "rb"))["build-system"]["requires"]))' \
    "$REPO_ROOT/contracts/pyproject.toml" "$package_dir/pyproject.toml" | sort -u)"
  mkdir -p "$WHEELHOUSE"
  # shellcheck disable=SC2086 # one requirement per line, none with spaces
  "${pip[@]}" download -q --disable-pip-version-check -d "$WHEELHOUSE" -c "$REPO_ROOT/requirements.lock" \
    -r "$package_dir/requirements.txt" $backends >&2
}

# The pip.conf a build receives as the secret `pip.conf` (the Dockerfiles mount it at /etc/pip.conf only
# while pip runs): the wheelhouse and nothing else, so the build needs no network and no proxy certificate.
write_build_pip_conf() {
  printf '[global]\nno-index = true\nfind-links = /root/.cache/pip/wheelhouse\n' >"$1"
}
