#!/usr/bin/env bash
# Quick start, command 2: installs what is missing, then runs every check:
# formatting, lints (ssr and hydrate), Rust unit/sqlx/HTTP tests, and
# Playwright in Debian's Chromium against the real server, oidc-provider and
# OpenBao (the Rust tests start their own OpenBao servers too).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" test
export SQLX_OFFLINE=true

# Third-party conformance material lives beside the project (../shared/conformance).
if [ -z "${PAVED_CONFORMANCE_DIR:-}" ]; then
  for candidate in "$ROOT/../shared/conformance" "$(git -C "$ROOT" config --get remote.origin.url 2>/dev/null)/../shared/conformance"; do
    if [ -d "$candidate/backstage-catalog-examples" ]; then
      PAVED_CONFORMANCE_DIR="$(cd "$candidate" && pwd)"
      break
    fi
  done
fi
[ -n "${PAVED_CONFORMANCE_DIR:-}" ] || die "cannot find the conformance material: set PAVED_CONFORMANCE_DIR or keep ../shared/conformance beside the project"
export PAVED_CONFORMANCE_DIR

log "formatting"
cargo fmt --all --check
log "lints (server side)"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "lints (browser side)"
cargo clippy --locked -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

log "Rust tests (unit, sqlx, HTTP over the real router, real oidc-provider)"
cargo test --locked --workspace --exclude paved
# The server's HTTP tests run one at a time in each binary: rendering pages
# while another test's runtime in the same process shuts down was seen to hang
# about one run in twenty (never in 40 serial runs); it costs about 20 s.
cargo test --locked -p paved -- --test-threads=1

log "building the portal"
"$ROOT/scripts/build.sh"

run_dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run_dir"
}
trap cleanup EXIT

port=${PAVED_TEST_PORT:-3310}
oidc_port=${OIDC_TEST_PORT:-4410}
export PAVED_URL="http://127.0.0.1:$port"
log "starting oidc-provider (:$oidc_port) and Paved (:$port) for the browser tests"
PAVED_PUBLIC_URL="$PAVED_URL" OIDC_PORT=$oidc_port node end2end/oidc/provider.mjs > "$run_dir/oidc.log" 2>&1 &
pids+=($!)
wait_for_http "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" 30 || { cat "$run_dir/oidc.log"; die "oidc-provider did not start"; }

vault_port=${VAULT_TEST_PORT:-8210}
export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN="paved-e2e-root"
printf 'audit "file" "paved-e2e" {\n  options { file_path = "%s" }\n}\n' "$run_dir/openbao-audit.log" > "$run_dir/openbao.hcl"
log "starting OpenBao dev server (:$vault_port)"
bao server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:$vault_port" \
  -config="$run_dir/openbao.hcl" > "$run_dir/openbao.log" 2>&1 &
pids+=($!)
wait_for_ok "$VAULT_ADDR/v1/sys/health" 30 || { cat "$run_dir/openbao.log"; die "OpenBao did not start"; }
portal_vault_token="$("$ROOT/scripts/vault-dev-setup.sh")"

llm_port=${LLM_TEST_PORT:-9410}
log "starting the stub LLM provider (:$llm_port)"
start_llm_stub "$llm_port" "sk-paved-e2e-provider-key" "$run_dir/llm-upstreams.yaml"

conformance="$PAVED_CONFORMANCE_DIR/backstage-catalog-examples"
# Budgets run on a clock started mid-period (a Wednesday in mid-March, 13:00 in
# Berlin), so no browser test depends on the day it runs: the demo's usage and
# every budget period are placed relative to it.
E2E_CLOCK_START=${E2E_CLOCK_START:-2026-03-18T12:00:00Z}
PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog,$ROOT/templates,$conformance" \
PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml" \
PAVED_SCAFFOLDER_GIT_HOSTS="git.paved.demo=file://$run_dir/git" PAVED_SCAFFOLDER_WORKDIR="$run_dir/scaffolder" \
PAVED_SERVICE_TOKENS="e2e-admin:e2e-admin-token-0123456789abcdef:platform_admin" \
PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$PAVED_URL" PAVED_DEMO=true \
PAVED_DATABASE_URL="sqlite://$run_dir/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
PAVED_OIDC_ISSUER="http://127.0.0.1:$oidc_port" PAVED_OIDC_CLIENT_ID=paved PAVED_OIDC_CLIENT_SECRET=paved-demo-secret \
PAVED_VAULT_ADDR="$VAULT_ADDR" PAVED_VAULT_TOKEN="$portal_vault_token" \
PAVED_LLM_UPSTREAMS="$run_dir/llm-upstreams.yaml" PAVED_BUDGET_TIMEZONE=Europe/Berlin \
PAVED_CLOCK_START="$E2E_CLOCK_START" PAVED_SIGN_IN_STARTS_PER_MINUTE=1000 \
  "$CARGO_TARGET_DIR/debug/paved" > "$run_dir/paved.log" 2>&1 &
pids+=($!)
wait_for_ok "$PAVED_URL/readyz" 60 || { cat "$run_dir/paved.log"; die "Paved did not start"; }

export CONFORMANCE_DIR="$conformance"
export PAVED_E2E_DATABASE="$run_dir/paved.db"
log "browser tests (Playwright, Debian Chromium)"
if ! npx playwright test --config end2end/playwright.config.ts; then
  echo "---- paved log (last 80 lines) ----"; tail -n 80 "$run_dir/paved.log"
  exit 1
fi
log "the official OpenAI Python SDK against the gateway"
if ! PAVED_ADMIN_TOKEN=e2e-admin-token-0123456789abcdef python3 end2end/sdk/openai_sdk_test.py; then
  echo "---- paved log (last 80 lines) ----"; tail -n 80 "$run_dir/paved.log"
  exit 1
fi
log "all tests passed"
