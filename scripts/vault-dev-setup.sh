#!/usr/bin/env bash
# Prepares a fresh OpenBao dev server for Paved (demo and browser tests):
# Kubernetes auth (so Paved can write workload roles), the audit header that
# carries Paved's request ids, and a token holding exactly docs/vault-policy.hcl.
# Prints that token. Needs VAULT_ADDR and VAULT_TOKEN (root) in the environment.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
: "${VAULT_ADDR:?}" "${VAULT_TOKEN:?}"
export VAULT_ADDR VAULT_TOKEN

if ! bao auth list -format=json | grep -q '"kubernetes/"'; then
  bao auth enable kubernetes >/dev/null
fi
# No cluster here: the host is where a real cluster's API would be; roles can
# be written and shown, workload logins need a real cluster (or the test suite's TokenReview endpoint).
bao write auth/kubernetes/config kubernetes_host="${PAVED_DEMO_K8S_HOST:-https://kubernetes.default.svc}" \
  kubernetes_ca_cert=@demo/kubernetes-ca.pem disable_local_ca_jwt=true token_reviewer_jwt=demo >/dev/null
bao write sys/config/auditing/request-headers/x-paved-request-id hmac=false >/dev/null
bao policy write paved-portal docs/vault-policy.hcl >/dev/null
bao token create -policy=paved-portal -period=24h -field=token
