#!/usr/bin/env bash
# `make run`: the operator against the current kube context or, when there is none, against the
# local control plane (started in the background; `make cluster-down` stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster_dir=${CONNECTOR_CLUSTER_DIR:-$HOME/.cache/connector-operator/cluster}
testbin=$(tests/cluster/build.sh --print)
# Prefer the kubectl built with the local control plane (same version); else the one on PATH.
if [[ -x "$testbin/kubectl" ]]; then PATH="$testbin:$PATH"; fi
if ! command -v kubectl >/dev/null; then
  tests/cluster/build.sh >/dev/null  # builds kubectl with the control plane
  PATH="$testbin:$PATH"
fi

if kubectl config current-context >/dev/null 2>&1; then
  echo "connector-operator: using kube context '$(kubectl config current-context)'" >&2
else
  echo "connector-operator: no kube context; starting the local control plane" >&2
  tests/cluster/build.sh >/dev/null
  PATH="$testbin:$PATH"
  eval "$(python3 tests/cluster/controlplane.py up --dir "$cluster_dir")"
  export KUBECONFIG
  echo "connector-operator: use it from another shell with: export KUBECONFIG=$KUBECONFIG" >&2
fi
kubectl apply -f crds/ >&2
# The operator keeps its hash key in a Secret of its own namespace, which must exist first.
kubectl apply -f deploy/namespace.yaml >&2
# One process on a developer's machine: no Lease needed (deploy/ turns it on for replicas).
export CONNECTOR_OPERATOR_LEADER_ELECTION=${CONNECTOR_OPERATOR_LEADER_ELECTION:-false}
export CONNECTOR_OPERATOR_LOG_FORMAT=${CONNECTOR_OPERATOR_LOG_FORMAT:-text}
exec .venv/bin/python -m connector_operator "$@"
