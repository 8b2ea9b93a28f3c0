#!/usr/bin/env bash
# Builds the benchmark's Go reference (main.go beside this script: a minimal controller-runtime
# reconciler of the operator's contract, whose CPU the benchmark compares with the operator's in
# one run) into a cache outside the repository keyed by the controller-runtime version of
# go.mod. A build runs only when the binary is missing.
#   tests/scale/goref/build.sh          build it if missing, print its path last
#   tests/scale/goref/build.sh --print  print its path without building
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's|^[[:space:]]*\(require \)\{0,1\}sigs.k8s.io/controller-runtime \(v[^ ]*\).*|\2|p' "$here/go.mod" | head -n1)
dir=${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/goref/$version
bin="$dir/goref"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi

if [[ ! -x "$bin" ]]; then
  export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
  mkdir -p "$dir"
  start=$SECONDS
  tmp=$(mktemp "$dir/.goref.XXXXXX")
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp" .) || { rm -f "$tmp"; exit 1; }
  mv -f "$tmp" "$bin"  # rename is atomic: a half-built binary is never cached
  printf '[build %s] built goref (controller-runtime %s) in %ss\n' "$(date +%H:%M:%S)" "$version" "$((SECONDS - start))" >&2
fi
echo "$bin"
