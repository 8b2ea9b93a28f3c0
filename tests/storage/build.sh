#!/usr/bin/env bash
# Installs Azurite (Microsoft's Azure Storage emulator, a Node.js program) from the npm registry
# into a cache outside the repository keyed by version, so that a test starts its Blob service
# with `azurite-blob` and never installs anything in the work tree.
#   tests/storage/build.sh          install what is missing, print the directory of azurite-blob last
#   tests/storage/build.sh --print  print that directory without installing
set -euo pipefail
version=${AZURITE_VERSION:-3.35.0}
cache=${CONNECTOR_AZURITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/azurite}
dir="$cache/$version"
bin="$dir/node_modules/.bin"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v npm >/dev/null; then
  log "Azurite needs Node.js and npm (Node 18 or newer) on PATH"; exit 1
fi
mkdir -p "$cache"
# Test workers may start at once on a cold cache: one installs, the others wait and find it done.
exec 9>"$cache/.lock"
flock 9

install() {
  if [[ -x "$bin/azurite-blob" ]]; then return 0; fi
  log "installing Azurite $version from the npm registry (~190 MB installed)"
  local start=$SECONDS tmp; tmp=$(mktemp -d "$cache/.tmp.$version.XXXXXX")
  # A private npm cache beside the install: nothing lands in ~/.npm, and npm's output goes to
  # stderr, the last stdout line being the path.
  npm install --prefix "$tmp" --no-save --no-audit --no-fund --no-package-lock \
    --cache "$cache/npm-cache" "azurite@$version" >&2 || { rm -rf "$tmp"; return 1; }
  rm -rf "$dir"
  mv "$tmp" "$dir"  # rename is atomic: a half-installed Azurite is never cached
  rm -rf "$cache/npm-cache"  # the installed tree is the cache; npm's download cache is not kept
  log "Azurite $version is in $dir ($((SECONDS - start))s)"
}

install
echo "$bin"
