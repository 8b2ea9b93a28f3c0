#!/usr/bin/env bash
# Builds the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok) from the go.mod files beside this script, into a cache outside the
# repository keyed by version. A build runs only for what is missing.
#   tests/cluster/build.sh          build what is missing, print the bin directory last
#   tests/cluster/build.sh --print  print the bin directory without building
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CONNECTOR_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/connector-operator/testbin}

version_of() { # module dir, module path -> version required in that go.mod
  sed -n "s|^[[:space:]]*\(require \)\{0,1\}$2 \(v[^ ]*\).*|\2|p" "$here/$1/go.mod" | head -n1
}
k8s_version=$(version_of k8s k8s.io/kubernetes)
etcd_version=$(version_of etcd go.etcd.io/etcd/server/v3)
kwok_version=$(version_of kwok sigs.k8s.io/kwok)
bin="$cache/k8s-$k8s_version-etcd-$etcd_version-kwok-$kwok_version"

if [[ "${1:-}" == "--print" ]]; then echo "$bin"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
mkdir -p "$bin"
log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

build() { # name, module dir, ldflags, packages...
  local name=$1 dir=$2 ldflags=$3; shift 3
  if [[ -x "$bin/$name" ]]; then return 0; fi
  log "building $name (cold builds take many minutes on a small machine; cached afterwards)"
  local start=$SECONDS tmp; tmp=$(mktemp -d "$bin/.tmp.XXXXXX")
  (cd "$here/$dir" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "$@") || { rm -rf "$tmp"; return 1; }
  for f in "$tmp"/*; do mv -f "$f" "$bin/"; done  # rename is atomic: a half-built binary is never cached
  rm -rf "$tmp"
  log "built $name in $((SECONDS - start))s"
}

minor=$(echo "$k8s_version" | cut -d. -f2)
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

total=$SECONDS
build etcd etcd "-s -w" go.etcd.io/etcd/server/v3
if [[ -x "$bin/server" && ! -x "$bin/etcd" ]]; then mv "$bin/server" "$bin/etcd"; fi
build kwok kwok "-s -w" sigs.k8s.io/kwok/cmd/kwok
# The three Kubernetes binaries share most packages: one invocation compiles them once.
if [[ ! -x "$bin/kube-apiserver" || ! -x "$bin/kube-controller-manager" || ! -x "$bin/kube-scheduler" ]]; then
  rm -f "$bin/kube-apiserver"
  build kube-apiserver k8s "$ld" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
fi
# kubectl of the same version, so that tests and users never meet client/server skew.
build kubectl k8s "$ld" k8s.io/kubernetes/cmd/kubectl
# kwok's stage definitions ship in its module: copy them beside the binaries.
if [[ ! -d "$bin/stages" ]]; then
  src=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  mkdir -p "$bin/stages.tmp" && cp -r "$src"/. "$bin/stages.tmp/" && chmod -R u+w "$bin/stages.tmp"
  mv "$bin/stages.tmp" "$bin/stages"
fi
log "binaries ready in $bin ($((SECONDS - total))s)"
echo "$bin"
