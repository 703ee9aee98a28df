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
export PAVED_OIDC_CLIENT_ID="${PAVED_OIDC_CLIENT_ID:-paved}"
export PAVED_OIDC_CLIENT_SECRET="${PAVED_OIDC_CLIENT_SECRET:-paved-demo-secret}"
oidc_port="${OIDC_PORT:-4400}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ -z "${PAVED_OIDC_ISSUER:-}" ]; then
  export PAVED_OIDC_ISSUER="http://127.0.0.1:$oidc_port"
  log "starting the demo OpenID provider at $PAVED_OIDC_ISSUER"
  OIDC_PORT=$oidc_port node end2end/oidc/provider.mjs > .paved/oidc.log 2>&1 &
  pids+=($!)
  wait_for_http "$PAVED_OIDC_ISSUER/.well-known/openid-configuration" 30 || die "the OpenID provider did not start; see .paved/oidc.log"
  demo_idp=1
fi

if [ -z "${PAVED_VAULT_ADDR:-}" ]; then
  export VAULT_ADDR="http://127.0.0.1:${VAULT_PORT:-8200}" VAULT_TOKEN="paved-dev-root"
  log "starting the OpenBao dev server at $VAULT_ADDR"
  bao server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="${VAULT_ADDR#http://}" \
    -config=demo/openbao.hcl > .paved/openbao.log 2>&1 &
  pids+=($!)
  wait_for_ok "$VAULT_ADDR/v1/sys/health" 30 || die "OpenBao did not start; see .paved/openbao.log"
  export PAVED_VAULT_ADDR="$VAULT_ADDR"
  # Paved runs with its documented least-privilege policy, not the root token.
  PAVED_VAULT_TOKEN="$("$ROOT/scripts/vault-dev-setup.sh")"
  export PAVED_VAULT_TOKEN
  demo_vault=1
fi

if [ -z "${PAVED_LLM_UPSTREAMS:-}" ] && [ -n "${demo_vault:-}" ]; then
  # No LLM provider is reachable from a demo: OpenAI's model names go to a local stub.
  llm_port="${LLM_STUB_PORT:-9400}"
  log "starting the stub LLM provider at http://127.0.0.1:$llm_port/v1"
  start_llm_stub "$llm_port" "sk-paved-demo-provider-key" "$ROOT/.paved/llm-upstreams.yaml"
  export PAVED_LLM_UPSTREAMS="$ROOT/.paved/llm-upstreams.yaml"
fi

"$CARGO_TARGET_DIR/${PAVED_PROFILE_DIR:-debug}/paved" &
pids+=($!)
wait_for_ok "$PAVED_PUBLIC_URL/readyz" 60 || die "Paved did not start"

cat <<MSG

  Paved is running at $PAVED_PUBLIC_URL
MSG
if [ -n "${demo_idp:-}" ]; then
  echo "  Demo sign-ins (identity provider at $PAVED_OIDC_ISSUER):"
  node -e '
    const users = require("./demo/users.json");
    for (const u of users) console.log(`    ${u.username.padEnd(6)} / ${u.password.padEnd(11)} ${u.role}`);'
fi
if [ -n "${demo_vault:-}" ]; then
  echo "  OpenBao dev server: $VAULT_ADDR (root token $VAULT_TOKEN; audit log .paved/openbao-audit.log)"
fi
if [ -n "${llm_port:-}" ]; then
  echo "  LLM gateway: $PAVED_PUBLIC_URL/llm/v1 (OpenAI-compatible; a team lead creates a key on the team's LLM budget page)."
  echo "  Its models answer from a local stub provider on :$llm_port; set PAVED_LLM_UPSTREAMS for real ones."
fi
echo "  Press Ctrl-C to stop everything."
wait -n "${pids[@]}"
