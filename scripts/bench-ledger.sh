#!/usr/bin/env bash
# Budget ledger benchmark: what each request's reserve-then-settle costs on
# SQLite (one process) and on PostgreSQL with one and two replicas (separate
# processes on one database). Not a test: numbers go to
# bench/ledger-results.md and the README.
# Load: `paved-ledger-load` (pg/src/bin/ledger_load.rs), open loop at a fixed
# rate, one team's budget (the hot row), each request reserved, then settled.
# PostgreSQL runs with fsync and synchronous commits on (PG_DURABLE=1) and
# counts function calls (track_functions), so the round trips per request
# are measured, not assumed.
#   BENCH_SECONDS (10) per run; BENCH_NO_BUILD=1 reuses the release binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
seconds=${BENCH_SECONDS:-10}
command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
[ "${BENCH_NO_BUILD:-}" = 1 ] || { log "building paved-ledger-load (release)"; cargo build -q --release -p paved-pg --bin paved-ledger-load; }
load="$CARGO_TARGET_DIR/release/paved-ledger-load"
work=$(mktemp -d)
PG_DURABLE=1 start_postgres "${BENCH_PG_PORT:-55470}"
trap 'stop_postgres; rm -rf "$work"' EXIT
admin="$PAVED_TEST_POSTGRES_URL"

calls() { # total calls of the ledger's batch functions and commits so far
  psql -qtA "$1" -c "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_user_functions WHERE funcname IN ('paved_reserve_many', 'paved_finish_many')" 
}

rows=()
run=0
run_pg() { # run_pg NAME RATE REPLICAS
  local name=$1 rate=$2 replicas=$3 db url per before after i
  run=$((run + 1))
  db="bench_$(date +%s%N)"
  psql -q "$admin" -c "CREATE DATABASE $db"
  url="${admin%/*}/$db"
  "$load" --url "$url" --rate 10 --seconds 1 --setup --replica setup > /dev/null
  sleep 0.6 # the statistics collector flushes every 500 ms
  before=$(calls "$url")
  per=$((rate / replicas))
  for i in $(seq 1 "$replicas"); do
    "$load" --url "$url" --rate "$per" --seconds "$seconds" --replica "r$i" > "$work/$run-$i.json" &
  done
  wait
  sleep 0.6
  after=$(calls "$url")
  jq -s --arg name "$name" --argjson rate "$rate" --argjson replicas "$replicas" --argjson calls "$((after - before))" '
    { name: $name, rate: $rate, replicas: $replicas,
      ok: (map(.ok) | add), errors: (map(.errors) | add),
      throughput: (map(.throughput) | add | floor),
      reserve_p50_ms: (map(.reserve_p50_us) | max / 1000),
      reserve_p99_ms: (map(.reserve_p99_us) | max / 1000),
      settle_p99_ms: (map(.settle_p99_us) | max / 1000),
      calls_per_request: (($calls - 100 * $replicas) / (map(.requests) | add) * 100 | round / 100) }' \
    "$work/$run"-*.json > "$work/$run.json"
  rows+=("$work/$run.json")
  log "$(jq -c . "$work/$run.json")"
}

run_sqlite() { # run_sqlite NAME RATE
  local name=$1 rate=$2
  run=$((run + 1))
  rm -f "$work/ledger.db"*
  "$load" --backend sqlite --url "sqlite://$work/ledger.db?mode=rwc" --rate "$rate" --seconds "$seconds" > "$work/$run-1.json"
  jq --arg name "$name" --argjson rate "$rate" '
    { name: $name, rate: $rate, replicas: 1, ok, errors, throughput: (.throughput | floor),
      reserve_p50_ms: (.reserve_p50_us / 1000), reserve_p99_ms: (.reserve_p99_us / 1000),
      settle_p99_ms: (.settle_p99_us / 1000), calls_per_request: null }' "$work/$run-1.json" > "$work/$run.json"
  rows+=("$work/$run.json")
  log "$(jq -c . "$work/$run.json")"
}

run_sqlite "SQLite, 1 process" 2000
run_pg "PostgreSQL, 1 replica" 2000 1
run_pg "PostgreSQL, 2 replicas" 2000 2
run_sqlite "SQLite, 1 process" 4000
run_pg "PostgreSQL, 1 replica" 4000 1
run_pg "PostgreSQL, 2 replicas" 4000 2

out=bench/ledger-results.md
{
  echo "# Budget ledger: SQLite vs PostgreSQL replicas"
  echo
  echo "Commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), PostgreSQL $(psql -qtA "$admin" -c 'SHOW server_version'), fsync and synchronous commits on. Each run: ${seconds} s open loop, every request reserved then settled against one team's budget; load generator, replicas and PostgreSQL on the same machine. \`scripts/bench-ledger.sh\`."
  echo
  echo "| run | offered req/s | served req/s | errors | reserve p50 | reserve p99 | settle p99 | ledger calls per request |"
  echo "|---|---|---|---|---|---|---|---|"
  for f in "${rows[@]}"; do
    jq -r '"| \(.name) | \(.rate) | \(.throughput) | \(.errors) | \(.reserve_p50_ms) ms | \(.reserve_p99_ms) ms | \(.settle_p99_ms) ms | \(.calls_per_request // "—") |"' "$f"
  done
} > "$out.new"
log "wrote $out.new (merge it into $out, newest first)"
cat "$out.new"
