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

# PAVED_E2E_ONLY=<spec file pattern>: only the browser tests matching it
# (for the developer loop; CI runs everything).
only="${PAVED_E2E_ONLY:-}"
if [ -z "$only" ]; then
log "formatting"
cargo fmt --all --check
log "lints (server side)"
cargo clippy --locked --workspace --all-targets -- -D warnings
log "lints (browser side)"
cargo clippy --locked -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

log "Rust tests (unit, sqlx, HTTP over the real router, real oidc-provider, PostgreSQL)"
# The PostgreSQL backend's tests each create their own database on a
# throwaway cluster (Debian's postgresql) on loopback.
start_postgres "${PG_TEST_PORT:-55433}"
trap stop_postgres EXIT
cargo test --locked --workspace --exclude paved
# The server's HTTP tests run one at a time in each binary: rendering pages
# while another test's runtime in the same process shuts down was seen to hang
# about one run in twenty (never in 40 serial runs); it costs about 20 s.
cargo test --locked -p paved -- --test-threads=1
stop_postgres
fi

log "building the portal"
"$ROOT/scripts/build.sh"

run_dir=$(mktemp -d)
export OIDC_PORT=${OIDC_TEST_PORT:-4410} VAULT_PORT=${VAULT_TEST_PORT:-8210} LLM_PORT=${LLM_TEST_PORT:-9410} KUBE_PORT=${KUBE_TEST_PORT:-6450}
export VAULT_TOKEN="paved-e2e-root" LLM_KEY="sk-paved-e2e-provider-key"
export PAVED_URL="http://127.0.0.1:${PAVED_TEST_PORT:-3310}"
export PAVED_BIND="${PAVED_URL#http://}" PAVED_PUBLIC_URL="$PAVED_URL"
# The browser tests run against their own stack whatever this shell has set.
unset PAVED_OIDC_ISSUER PAVED_VAULT_ADDR PAVED_LLM_UPSTREAMS PAVED_KUBE_CLUSTERS
start_stack "$run_dir" oidc vault kube llm
# A second cluster that cannot be reached (nothing listens on port 9), for
# the pages' unreachable state.
sed 's#server: .*#server: http://127.0.0.1:9#' "$run_dir/kube-stub.kubeconfig" > "$run_dir/edge-west.kubeconfig"
printf '  - name: edge-west\n    kubeconfig: edge-west.kubeconfig\n' >> "$run_dir/clusters.yaml"
trap 'stop_stack; rm -rf "$run_dir"' EXIT

# GitHub cannot be reached from here: its stand-in serves an organization
# (every request checked against GitHub's OpenAPI description), with the
# token in OpenBao where the integration says.
github_port=${GITHUB_TEST_PORT:-9480}
"$CARGO_TARGET_DIR/debug/paved-githost-stub" --port "$github_port" --repos 3 --token e2e-github-token --token-expires-in-days 5 \
  > "$run_dir/githost.log" 2>&1 &
pids+=($!)
wait_for_ok "http://127.0.0.1:$((github_port + 1))/_stub/stats" 60 || { cat "$run_dir/githost.log"; die "the GitHub stand-in did not start"; }
curl -sf -X POST -H "X-Vault-Token: $VAULT_TOKEN" -d '{"data":{"token":"e2e-github-token","webhook_secret":"e2e-webhook-secret"}}' \
  "$VAULT_ADDR/v1/secret/data/platform/git/github.com" > /dev/null || die "cannot store the GitHub token in OpenBao"
printf 'integrations:\n  - host: github.com\n    kind: github\n    api_base_url: http://127.0.0.1:%s\n    credential: git/github.com\n' \
  "$github_port" > "$run_dir/integrations.yaml"
export PAVED_INTEGRATIONS="$run_dir/integrations.yaml"

conformance="$PAVED_CONFORMANCE_DIR/backstage-catalog-examples"
# Budgets run on a clock started mid-period (a Wednesday in mid-March, 13:00 in
# Berlin), so no browser test depends on the day it runs: the demo's usage and
# every budget period are placed relative to it.
export PAVED_CLOCK_START=${E2E_CLOCK_START:-2026-03-18T12:00:00Z}
export PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog,$ROOT/templates,$conformance" \
  PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml" \
  PAVED_SCAFFOLDER_GIT_HOSTS="git.paved.demo=file://$run_dir/git" PAVED_SCAFFOLDER_WORKDIR="$run_dir/scaffolder" \
  PAVED_SERVICE_TOKENS="e2e-admin:e2e-admin-token-0123456789abcdef:platform_admin" \
  PAVED_DEMO=true PAVED_DATABASE_URL="sqlite://$run_dir/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_BUDGET_TIMEZONE=Europe/Berlin PAVED_SIGN_IN_STARTS_PER_MINUTE=1000
log "starting Paved ($PAVED_URL) for the browser tests"
run_paved "$run_dir/paved.log"

export CONFORMANCE_DIR="$conformance"
export PAVED_E2E_DATABASE="$run_dir/paved.db"
log "browser tests (Playwright, Debian Chromium)"
if ! npx playwright test --config end2end/playwright.config.ts ${only:+"$only"}; then
  echo "---- paved log (last 80 lines) ----"; tail -n 80 "$run_dir/paved.log"
  exit 1
fi
[ -z "$only" ] || { log "browser tests matching $only passed"; exit 0; }
log "the official OpenAI Python SDK against the gateway"
# LLM_STUB_URL: the stub's controls, to make team-chat's deployments fail and show its fallback.
if ! PAVED_ADMIN_TOKEN=e2e-admin-token-0123456789abcdef LLM_STUB_URL="$LLM_STUB_URL" python3 end2end/sdk/openai_sdk_test.py; then
  echo "---- paved log (last 80 lines) ----"; tail -n 80 "$run_dir/paved.log"
  exit 1
fi
log "the official Anthropic Python SDK against the gateway"
if ! PAVED_ADMIN_TOKEN=e2e-admin-token-0123456789abcdef python3 end2end/sdk/anthropic_sdk_test.py; then
  echo "---- paved log (last 80 lines) ----"; tail -n 80 "$run_dir/paved.log"
  exit 1
fi
log "all tests passed"
