#!/usr/bin/env bash
# `make gateway`: the REST gateway on http://127.0.0.1:8443/api/v1, against the current kube
# context or the local control plane that `make run` started. Plain HTTP on loopback only: in a
# cluster it serves TLS (deploy/gateway/).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster_dir=${CONNECTOR_CLUSTER_DIR:-$HOME/.cache/connector-operator/cluster}
testbin=$(tests/cluster/build.sh --print)
if [[ -x "$testbin/kubectl" ]]; then PATH="$testbin:$PATH"; fi
if ! kubectl config current-context >/dev/null 2>&1; then
  if [[ ! -f "$cluster_dir/admin.kubeconfig" ]]; then
    echo "connector-operator gateway: no kube context; run 'make run' first (it starts the local control plane)" >&2
    exit 1
  fi
  export KUBECONFIG=$cluster_dir/admin.kubeconfig
fi
echo "connector-operator gateway: using kube context '$(kubectl config current-context)'" >&2
kubectl apply -f crds/ -f deploy/gateway/tenant-roles.yaml >&2
export CONNECTOR_GATEWAY_HOST=${CONNECTOR_GATEWAY_HOST:-127.0.0.1}
export CONNECTOR_GATEWAY_PORT=${CONNECTOR_GATEWAY_PORT:-8443}
export CONNECTOR_GATEWAY_PREFIX=${CONNECTOR_GATEWAY_PREFIX-/api/v1}
exec .venv/bin/python -m connector_operator gateway
