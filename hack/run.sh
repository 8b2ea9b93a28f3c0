#!/usr/bin/env bash
# `make run`: the operator against the current kube context or, when there is none, against the
# local control plane (started in the background; `make cluster-down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster_dir=${CONNECTOR_CLUSTER_DIR:-$HOME/.cache/connector-operator/cluster}

if kubectl config current-context >/dev/null 2>&1; then
  echo "connector-operator: using kube context '$(kubectl config current-context)'" >&2
else
  echo "connector-operator: no kube context; starting the local control plane" >&2
  eval "$(python3 tests/cluster/controlplane.py up --dir "$cluster_dir")"
  export KUBECONFIG
  PATH="$(tests/cluster/build.sh --print):$PATH"
  echo "connector-operator: use it from another shell with: export KUBECONFIG=$KUBECONFIG" >&2
fi
kubectl apply -f crds/ >&2
exec .venv/bin/python -m connector_operator "$@"
