# Shared by Paved's scripts: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Compiled dependencies persist across runs and fresh clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paved/target}"
export LEPTOS_OUTPUT_NAME=paved
# CI builds once per run: incremental data would only fill the cache (it reached 35 GB here).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# pip's --user scripts (OpenBao's `bao`) may live outside PATH on a fresh machine.
export PATH="$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH:$HOME/.local/bin"
SITE_ROOT="$ROOT/target/site"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Waits until `url` answers (any HTTP status), up to `seconds`.
wait_for_http() {
  local url=$1 seconds=${2:-60} i=0
  until curl -s -o /dev/null "$url"; do
    i=$((i + 1))
    [ "$i" -ge $((seconds * 5)) ] && return 1
    sleep 0.2
  done
}

# Waits until `url` answers 200, up to `seconds`.
wait_for_ok() {
  local url=$1 seconds=${2:-60} i=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; do
    i=$((i + 1))
    [ "$i" -ge $((seconds * 5)) ] && return 1
    sleep 0.2
  done
}

# For benchmarks: a scratch folder, the demo OpenID provider on $2 and an
# OpenBao dev server on $3 (prepared by vault-dev-setup.sh) for a Paved on
# port $1. Sets port, work, url, oidc_port, portal_token and pids; stops everything on exit.
start_bench_stack() {
  local vault_port=$3
  port=$1
  oidc_port=$2
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
  url="http://127.0.0.1:$port"
  PAVED_PUBLIC_URL="$url" OIDC_PORT=$oidc_port node "$ROOT/end2end/oidc/provider.mjs" > "$work/oidc.log" 2>&1 &
  pids+=($!)
  export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN="paved-bench-root"
  printf 'audit "file" "bench" {\n  options { file_path = "%s" }\n}\n' "$work/audit.log" > "$work/openbao.hcl"
  bao server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:$vault_port" \
    -config="$work/openbao.hcl" > "$work/openbao.log" 2>&1 &
  pids+=($!)
  wait_for_http "http://127.0.0.1:$oidc_port/.well-known/openid-configuration" 30
  wait_for_ok "$VAULT_ADDR/v1/sys/health" 30
  portal_token="$("$ROOT/scripts/vault-dev-setup.sh")"
}
