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
