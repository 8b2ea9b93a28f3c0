#!/usr/bin/env bash
# Builds helm (helm.sh/helm/v3's cmd/helm, the `tool` of go.mod beside this script) into a cache
# outside the repository keyed by the helm version of go.mod, version-stamped as upstream's
# Makefile does (`helm version` says it; lint and template assume the client-go minor of go.mod
# as the cluster's). A build runs only when the binary is missing.
#   tests/helm/build.sh          build it if missing, print its path last
#   tests/helm/build.sh --print  print its path without building
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version_of() { # module path -> version required in go.mod
  sed -n "s|^[[:space:]]*\(require \)\{0,1\}$1 \(v[^ ]*\).*|\2|p" "$here/go.mod" | head -n1
}
version=$(version_of helm.sh/helm/v3)
dir=${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/helm/$version
bin="$dir/helm"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi

if [[ ! -x "$bin" ]]; then
  export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
  client_go=$(version_of k8s.io/client-go)  # v0.36.2: Kubernetes 1.36
  major=$(( $(echo "${client_go#v}" | cut -d. -f1) + 1 )) minor=$(echo "$client_go" | cut -d. -f2)
  ld="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
  ld="$ld -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld="$ld -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  mkdir -p "$dir"
  printf '[build %s] building helm %s (about a minute cold; cached afterwards)\n' \
    "$(date +%H:%M:%S)" "$version" >&2
  start=$SECONDS
  tmp=$(mktemp "$dir/.helm.XXXXXX")
  (cd "$here" && go build -trimpath -ldflags "$ld" -o "$tmp" helm.sh/helm/v3/cmd/helm) \
    || { rm -f "$tmp"; exit 1; }
  mv -f "$tmp" "$bin"  # rename is atomic: a half-built binary is never cached
  printf '[build %s] built helm %s in %ss\n' "$(date +%H:%M:%S)" "$version" "$((SECONDS - start))" >&2
fi
echo "$bin"
