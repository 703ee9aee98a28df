#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds, and runs Paved with
# demo data, a local OpenID provider and an OpenBao dev server (Paved uses it
# with the least-privilege policy in docs/vault-policy.hcl). Any PAVED_*
# variable already set overrides the demo default (e.g. a real IdP). Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" demo
"$ROOT/scripts/build.sh" ${PAVED_BUILD_FLAGS:-}

mkdir -p .paved
export PAVED_BIND="${PAVED_BIND:-127.0.0.1:3000}"
export PAVED_PUBLIC_URL="${PAVED_PUBLIC_URL:-http://$PAVED_BIND}"
export PAVED_DATABASE_URL="${PAVED_DATABASE_URL:-sqlite://.paved/demo.db}"
export PAVED_SITE_ROOT="${PAVED_SITE_ROOT:-$SITE_ROOT}"
export PAVED_DEMO="${PAVED_DEMO:-true}"
export PAVED_CATALOG_FILE_ROOTS="${PAVED_CATALOG_FILE_ROOTS:-$ROOT/catalog,$ROOT/templates}"
export PAVED_CATALOG_LOCATIONS="${PAVED_CATALOG_LOCATIONS:-file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml}"
# Golden paths publish to bare repositories under .paved/git (clone them with git clone).
export PAVED_SCAFFOLDER_GIT_HOSTS="${PAVED_SCAFFOLDER_GIT_HOSTS:-git.paved.demo=file://$ROOT/.paved/git}"
export PAVED_SCAFFOLDER_WORKDIR="${PAVED_SCAFFOLDER_WORKDIR:-$ROOT/.paved/scaffolder}"
export OIDC_PORT="${OIDC_PORT:-4400}" VAULT_PORT="${VAULT_PORT:-8200}" LLM_PORT="${LLM_STUB_PORT:-9400}" KUBE_PORT="${KUBE_STUB_PORT:-6443}"
export LLM_KEY=sk-paved-demo-provider-key
# No LLM provider is reachable from a demo: OpenAI's model names go to a local stub.
# A stack part is skipped when its PAVED_* variable points at a real one.
if [ -n "${PAVED_VAULT_ADDR:-}" ]; then
  start_stack "$ROOT/.paved" oidc kube
else
  start_stack "$ROOT/.paved" oidc vault kube llm
fi
trap 'trap - INT TERM EXIT; stop_stack' INT TERM EXIT
run_paved -

cat <<MSG

  Paved is running at $PAVED_PUBLIC_URL
MSG
if [ -n "${STARTED_OIDC:-}" ]; then
  echo "  Demo sign-ins (identity provider at $PAVED_OIDC_ISSUER):"
  node -e '
    const users = require("./demo/users.json");
    for (const u of users) console.log(`    ${u.username.padEnd(6)} / ${u.password.padEnd(11)} ${u.role}`);'
fi
if [ -n "${STARTED_VAULT:-}" ]; then
  echo "  OpenBao dev server: $VAULT_ADDR (root token $VAULT_TOKEN; audit log .paved/openbao-audit.log)"
fi
if [ -n "${STARTED_LLM:-}" ]; then
  echo "  LLM gateway: $PAVED_PUBLIC_URL/llm/v1 (OpenAI-compatible; a team lead creates a key on the team's LLM budget page)."
  echo "  Its models answer from a local stub provider on :$LLM_PORT; set PAVED_LLM_UPSTREAMS for real ones."
fi
if [ -n "${STARTED_KUBE:-}" ]; then
  echo "  Kubernetes: a local API stand-in on :$KUBE_PORT plays the cluster prod-eu (see Payments API's page; kubeconfig .paved/kube-stub.kubeconfig)."
fi
echo "  Press Ctrl-C to stop everything."
wait -n "${pids[@]}"
