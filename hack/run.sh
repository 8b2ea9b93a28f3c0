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
# The edc profile (the default) needs its installation settings. Without a vault configured,
# a development installation is made: the tests' vault stand-in on loopback, its token and
# placeholder database credentials in the operator's namespace, and placeholder identity
# services. Pods on the local control plane are not run (kwok), so nothing calls them.
dev_vault=""
if [[ "${CONNECTOR_OPERATOR_PROFILE:-edc}" == edc && -z "${CONNECTOR_OPERATOR_EDC_VAULT_URL:-}" ]]; then
  token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  port=${DEV_VAULT_PORT:-8200}
  python3 hack/dev_vault.py --token "$token" --port "$port" &
  dev_vault=$!
  ns=connector-operator-system
  kubectl -n "$ns" create secret generic connector-operator-vault --from-literal=token="$token" \
    --dry-run=client -o yaml | kubectl apply -f - >&2
  kubectl -n "$ns" create secret generic connector-operator-datasource --from-literal=user=edc \
    --from-literal=password=edc --dry-run=client -o yaml | kubectl apply -f - >&2
  export CONNECTOR_OPERATOR_EDC_VAULT_URL=http://127.0.0.1:$port
  export CONNECTOR_OPERATOR_EDC_PUBLIC_HOST=${CONNECTOR_OPERATOR_EDC_PUBLIC_HOST:-connectors.localhost}
  export CONNECTOR_OPERATOR_EDC_STS_TOKEN_URL=${CONNECTOR_OPERATOR_EDC_STS_TOKEN_URL:-http://sts.localhost/token}
  export CONNECTOR_OPERATOR_EDC_TRUSTED_ISSUERS=${CONNECTOR_OPERATOR_EDC_TRUSTED_ISSUERS:-did:web:issuer.localhost}
  export CONNECTOR_OPERATOR_EDC_BDRS_URL=${CONNECTOR_OPERATOR_EDC_BDRS_URL:-http://bdrs.localhost/api}
  export CONNECTOR_OPERATOR_EDC_DATASOURCE_URL=${CONNECTOR_OPERATOR_EDC_DATASOURCE_URL:-jdbc:postgresql://localhost:5432/edc}
  echo "connector-operator: development vault on $CONNECTOR_OPERATOR_EDC_VAULT_URL" >&2
fi
# One process on a developer's machine: no Lease needed (deploy/ turns it on for replicas).
export CONNECTOR_OPERATOR_LEADER_ELECTION=${CONNECTOR_OPERATOR_LEADER_ELECTION:-false}
export CONNECTOR_OPERATOR_LOG_FORMAT=${CONNECTOR_OPERATOR_LOG_FORMAT:-text}
if [[ -z "$dev_vault" ]]; then exec .venv/bin/python -m connector_operator "$@"; fi
trap 'kill "$dev_vault" 2>/dev/null || true' EXIT
.venv/bin/python -m connector_operator "$@"
