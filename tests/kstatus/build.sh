#!/usr/bin/env bash
# Builds the kstatus helper (main.go beside this script: kstatus's own status.Compute, the library
# Flux reads health with, over objects given as JSON) into a cache outside the repository keyed by
# the cli-utils version of go.mod. A build runs only when the binary is missing.
#   tests/kstatus/build.sh          build it if missing, print its path last
#   tests/kstatus/build.sh --print  print its path without building
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's|^[[:space:]]*\(require \)\{0,1\}sigs.k8s.io/cli-utils \(v[^ ]*\).*|\2|p' "$here/go.mod" | head -n1)
dir=${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/kstatus/$version
bin="$dir/kstatus"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi

if [[ ! -x "$bin" ]]; then
  export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
  mkdir -p "$dir"
  start=$SECONDS
  tmp=$(mktemp "$dir/.kstatus.XXXXXX")
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp" .) || { rm -f "$tmp"; exit 1; }
  mv -f "$tmp" "$bin"  # rename is atomic: a half-built binary is never cached
  printf '[build %s] built kstatus (cli-utils %s) in %ss\n' "$(date +%H:%M:%S)" "$version" "$((SECONDS - start))" >&2
fi
echo "$bin"
