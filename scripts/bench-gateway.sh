#!/usr/bin/env bash
# LLM gateway benchmark (release build, local stub upstream). Not a test:
# numbers go to bench/gateway-results.md and the README.
#   (a) straight to the stub (`paved-llm-stub`), open loop at 1,000 req/s, 20 s
#   (b) through Paved's gateway, same load, with budgets, an Idempotency-Key
#       per request and metrics (always on)
#   (b5) the issue's goal rate: straight to the stub and through the gateway,
#       open loop at 5,000 req/s (BENCH_HIGH_RATE), one after the other
#   (c) through the gateway, closed loop, 64 connections, 20 s (max throughput)
#   (d) straight to the stub, closed loop, 64 connections, 20 s
#   (e) LiteLLM's proxy on the same stub, if `litellm[proxy]` installs into a
#       venv under ~/.cache/paved (BENCH_SKIP_LITELLM=1 skips it)
# Load comes from `llm-load` (llm-stub/src/bin/llm-load.rs): open-loop latency
# is measured from each request's scheduled send time, so queueing counts.
# Paved's CPU time per request comes from /proc/<pid>/stat (utime + stime)
# around each measured run, its peak RSS from VmHWM. The "other CPU" column is
# the machine's busy time during a run minus the stub's, the server's and the
# load generator's: anything else running (a build) shows up there.
#   BENCH_RATE (1000), BENCH_DURATION (20 s) and BENCH_CONNECTIONS (64) override
#   the defaults; BENCH_NO_BUILD=1 reuses the last release binaries.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

rate=${BENCH_RATE:-1000}
high_rate=${BENCH_HIGH_RATE:-5000}
# Routing, cache lookups and guardrails are measured at this rate (issue goal: 2,000/s).
route_rate=${BENCH_ROUTE_RATE:-2000}
duration=${BENCH_DURATION:-20}
connections=${BENCH_CONNECTIONS:-64}
warmup=3
stub_port=9450
port=3350
litellm_port=4450
litellm_venv="$HOME/.cache/paved/litellm-venv"

command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
command -v curl >/dev/null || die "curl is required (scripts/setup.sh demo installs it)"

commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
# The server exactly as scripts/build.sh --release builds it (the gateway needs
# no browser bundle), then the stub and the load generator.
if [ "${BENCH_NO_BUILD:-}" = 1 ]; then
  log "BENCH_NO_BUILD=1: using the release binaries already built"
  commit="$commit (binaries from an earlier build)"
else
  log "building paved, paved-llm-stub and llm-load (release)"
  cargo build --locked -p paved --profile release
  cargo build --locked -p paved-llm-stub --profile release --bins
fi
bin="$CARGO_TARGET_DIR/release"
for b in paved paved-llm-stub llm-load; do [ -x "$bin/$b" ] || die "$bin/$b is missing"; done

work=$(mktemp -d)
# The stub (no key: the route below has no credential, so Vault stays off).
PAVED_PROFILE_DIR=release LLM_PORT=$stub_port start_stack "$work" llm
trap 'stop_stack; rm -rf "$work"' EXIT
stub="$LLM_STUB_URL"

# CPU ticks (utime + stime) of a process and its descendants.
cpu_ticks() {
  local pid=$1 total=0 child
  [ -r "/proc/$pid/stat" ] && total=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  for child in $(pgrep -P "$pid" || true); do total=$((total + $(cpu_ticks "$child"))); done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# Peak resident set (VmHWM) of a process and its descendants, in MB.
peak_rss_mb() {
  local pid=$1 kb=0 child
  [ -r "/proc/$pid/status" ] && kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
  for child in $(pgrep -P "$pid" || true); do kb=$((kb + $(peak_rss_mb "$child") * 1024)); done
  echo $((kb / 1024))
}

body='{"model":"stub-chat","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
load() { "$bin/llm-load" --body "$body" "$@"; }

# Busy CPU ticks of the whole machine in processes (user, nice, system; per-process
# times leave interrupts out, so they are left out here too).
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4; exit}' /proc/stat; }
# Ticks of everything this script started (the stub, Paved, LiteLLM).
own_ticks() {
  local total=0 p
  for p in "${pids[@]}"; do total=$((total + $(cpu_ticks "$p"))); done
  echo "$total"
}

# One measured run: `measure NAME PID(or -) llm-load args…`. Writes $work/NAME.json
# with the load generator's line plus `cpu_ms_per_req` of PID over the run and
# `other_cpu_cores`: what the rest of the machine used meanwhile.
measure() {
  local name=$1 pid=$2 before=0 after=0 m0 m1 o0 o1 t0 t1
  shift 2
  log "$name: llm-load $*"
  [ "$pid" = - ] || before=$(cpu_ticks "$pid")
  m0=$(machine_ticks) o0=$(own_ticks) t0=$(date +%s.%N)
  load "$@" > "$work/$name.json" || die "$name: llm-load failed: $(cat "$work/$name.json")"
  m1=$(machine_ticks) o1=$(own_ticks) t1=$(date +%s.%N)
  [ "$pid" = - ] || after=$(cpu_ticks "$pid")
  jq -c --arg pid "$pid" --argjson ticks $((after - before)) --argjson hz "$hz" \
    --argjson other $(((m1 - m0) - (o1 - o0))) --argjson secs "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
    '. + (if $pid == "-" then {} else {cpu_ms_per_req: (if .requests > 0 then ($ticks * 1000 / $hz / .requests * 1000 | round / 1000) else null end)} end)
       + {other_cpu_cores: (([($other / $hz) - (.loadgen_cpu_s // 0), 0] | max) / $secs * 100 | round / 100)}' \
    "$work/$name.json" > "$work/$name.tmp" && mv "$work/$name.tmp" "$work/$name.json"
  cat "$work/$name.json" >&2
}
field() { jq -r "$2" "$work/$1.json"; }

# Paved with the stub as the only upstream. Nothing here signs a person in, so no
# OpenID provider runs (discovery is lazy); Vault is off (the route has no credential).
cat > "$work/upstreams.yaml" <<YAML
models:
  - model: stub-chat
    provider: stub
    base_url: $stub/v1
    max_output_tokens: 1000
  - model: stub-routed
    max_output_tokens: 1000
    deployments:
      - { name: east, provider: stub, base_url: "$stub/v1", upstream_model: stub-chat, price_model: stub-chat, weight: 3 }
      - { name: west, provider: stub, base_url: "$stub/v1", upstream_model: stub-chat, price_model: stub-chat, weight: 1 }
    fallbacks: [stub-chat]
YAML
admin_token=bench-admin-0123456789abcdef
lead_token=bench-lead-0123456789abcdef
url="http://127.0.0.1:$port"
export PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$url" PAVED_DEMO=true PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_OIDC_ISSUER="http://127.0.0.1:9" PAVED_OIDC_CLIENT_ID=paved PAVED_OIDC_CLIENT_SECRET=paved-demo-secret \
  PAVED_SERVICE_TOKENS="bench:$admin_token:platform_admin,lead:$lead_token:team_lead:payments" \
  PAVED_LLM_UPSTREAMS="$work/upstreams.yaml"
run_paved "$work/paved.log" "$bin/paved"
idle_rss=$(awk '/^VmRSS:/ {print int($2 / 1024)}' "/proc/$paved_pid/status")

# Price, budget and a gateway key for team payments (seeded by PAVED_DEMO).
api() {
  local method=$1 path=$2 token=$3 data=$4 want=$5 code
  code=$(curl -s -o "$work/api.out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$data" "$url$path")
  [ "$code" = "$want" ] || die "$method $path answered $code: $(cat "$work/api.out")"
}
api PUT /api/budgets/v1/prices/stub/stub-chat "$admin_token" '{"input_usd_per_mtok":"0.10","output_usd_per_mtok":"10"}' 200
api PUT /api/budgets/v1/teams/payments "$lead_token" '{"period":"monthly","limit_cents":100000000}' 200
api POST /api/budgets/v1/teams/payments/keys "$lead_token" '{"name":"bench"}' 201
key=$(jq -r .key "$work/api.out")
case "$key" in pvg_*) ;; *) die "no gateway key in $(cat "$work/api.out")" ;; esac
gw_auth="Authorization: Bearer $key"
gateway="$url/llm/v1/chat/completions"
code=$(curl -s -o "$work/api.out" -w '%{http_code}' -H "$gw_auth" -H 'Content-Type: application/json' \
  -H 'Idempotency-Key: bench-check' -d "$body" "$gateway")
[ "$code" = 200 ] || die "a call through the gateway answered $code: $(cat "$work/api.out")"

direct="$stub/v1/chat/completions"
scrape() { curl -s -H "Authorization: Bearer $admin_token" "$url/metrics" > "$1"; }
# Sums a metric's series in a scrape: `metric FILE NAME PRINTF-FORMAT`.
metric() { awk -v m="$2" -v f="$3" '$1 == m || index($1, m "{") == 1 {s += $NF} END {printf f, s}' "$1"; }
# (a) and (b): open loop at $rate req/s, each after a warm-up of the same load.
load --url "$direct" --rate "$rate" --duration "$warmup" > /dev/null
measure direct_rate - --url "$direct" --rate "$rate" --duration "$duration"
load --url "$gateway" -H "$gw_auth" --idempotency --rate "$rate" --duration "$warmup" > /dev/null
scrape "$work/metrics-before.txt"
measure gateway_rate "$paved_pid" --url "$gateway" -H "$gw_auth" --idempotency --rate "$rate" --duration "$duration"
scrape "$work/metrics-after.txt"
# (b5): the same at the issue's goal rate, stub direct then gateway.
load --url "$direct" --rate "$high_rate" --duration "$warmup" > /dev/null
measure direct_high - --url "$direct" --rate "$high_rate" --duration "$duration"
load --url "$gateway" -H "$gw_auth" --idempotency --rate "$high_rate" --duration "$warmup" > /dev/null
measure gateway_high "$paved_pid" --url "$gateway" -H "$gw_auth" --idempotency --rate "$high_rate" --duration "$duration"
# (c) and (d): closed loop, as fast as $connections connections go.
load --url "$gateway" -H "$gw_auth" --idempotency --max --connections "$connections" --duration "$warmup" > /dev/null
measure gateway_max "$paved_pid" --url "$gateway" -H "$gw_auth" --idempotency --max --connections "$connections" --duration "$duration"
load --url "$direct" --max --connections "$connections" --duration "$warmup" > /dev/null
measure direct_max - --url "$direct" --max --connections "$connections" --duration "$duration"
# One connection through the gateway, to compare with LiteLLM's.
measure gateway_one "$paved_pid" --url "$gateway" -H "$gw_auth" --idempotency --max --connections 1 --duration 10

# Routing (two weighted deployments and a fallback), a cache lookup that
# misses (every body differs) and guardrails (all seven detectors, redacting
# an email address in every prompt, and the answers) — then cache hits.
api PUT /api/budgets/v1/teams/payments/gateway-settings "$lead_token" \
  '{"cache_ttl_secs":300,"guardrail_detectors":["email","phone","card_number","iban","api_key","aws_key","private_key"],"guardrail_prompt":"redact","guardrail_response":"redact"}' 200
run_tag=$(date +%s%N)
routed_body='{"model":"stub-routed","messages":[{"role":"user","content":"Say hello to ana@example.com, request {n} of run '"$run_tag"'."}],"max_tokens":16}'
hit_body='{"model":"stub-routed","messages":[{"role":"user","content":"Say hello to ana@example.com."}],"max_tokens":16}'
load --url "$direct" --rate "$route_rate" --duration "$warmup" > /dev/null
measure direct_route_rate - --url "$direct" --rate "$route_rate" --duration "$duration"
body=$routed_body load --url "$gateway" -H "$gw_auth" --vary --rate "$route_rate" --duration "$warmup" > /dev/null
scrape "$work/metrics-routed-before.txt"
body=$routed_body measure routed_rate "$paved_pid" --url "$gateway" -H "$gw_auth" --vary --rate "$route_rate" --duration "$duration"
scrape "$work/metrics-routed-after.txt"
body=$hit_body load --url "$gateway" -H "$gw_auth" --rate "$route_rate" --duration "$warmup" > /dev/null
body=$hit_body measure cache_hit_rate "$paved_pid" --url "$gateway" -H "$gw_auth" --rate "$route_rate" --duration "$duration"
scrape "$work/metrics-hits.txt"
code=$(curl -s -o "$work/api.out" -D "$work/hit.headers" -w '%{http_code}' -H "$gw_auth" -H 'Content-Type: application/json' -d "$hit_body" "$gateway")
grep -qi '^x-paved-cache: hit' "$work/hit.headers" || die "the cache-hit run did not hit the cache: $(cat "$work/hit.headers")"
hits=$(metric "$work/metrics-hits.txt" 'llm_cache_requests_total' %.0f)
routed_overhead=$(awk -v a="$(metric "$work/metrics-routed-after.txt" llm_gateway_overhead_seconds_sum %.6f)" \
  -v b="$(metric "$work/metrics-routed-before.txt" llm_gateway_overhead_seconds_sum %.6f)" \
  -v c="$(( $(metric "$work/metrics-routed-after.txt" llm_gateway_overhead_seconds_count %.0f) - $(metric "$work/metrics-routed-before.txt" llm_gateway_overhead_seconds_count %.0f) ))" \
  'BEGIN {if (c > 0) printf "%.3f", (a - b) / c * 1000; else print "n/a"}')
peak_rss=$(peak_rss_mb "$paved_pid")

# What the gateway counted, and its own overhead histogram (time not spent
# upstream) over run (b) alone: under the closed loop it is mostly queueing.
scrape "$work/metrics.txt"
gw_counted=$(metric "$work/metrics.txt" llm_requests_total %.0f)
overhead_count=$(( $(metric "$work/metrics-after.txt" llm_gateway_overhead_seconds_count %.0f) \
  - $(metric "$work/metrics-before.txt" llm_gateway_overhead_seconds_count %.0f) ))
overhead_mean=$(awk -v a="$(metric "$work/metrics-after.txt" llm_gateway_overhead_seconds_sum %.6f)" \
  -v b="$(metric "$work/metrics-before.txt" llm_gateway_overhead_seconds_sum %.6f)" -v c="$overhead_count" \
  'BEGIN {if (c > 0) printf "%.3f", (a - b) / c * 1000; else print "n/a"}')

# (e) LiteLLM, optional.
litellm_note=""
litellm_version=""
if [ "${BENCH_SKIP_LITELLM:-}" = 1 ]; then
  litellm_note="skipped (BENCH_SKIP_LITELLM=1)"
elif [ ! -x "$litellm_venv/bin/litellm" ]; then
  log "installing LiteLLM into $litellm_venv"
  if ! { python3 -m venv "$litellm_venv" && "$litellm_venv/bin/pip" install --quiet 'litellm[proxy]'; } > "$work/litellm-install.log" 2>&1; then
    litellm_note="skipped: \`pip install 'litellm[proxy]'\` failed here ($(tail -1 "$work/litellm-install.log" | cut -c1-200))"
    rm -rf "$litellm_venv"
  fi
fi
if [ -z "$litellm_note" ]; then
  litellm_version=$("$litellm_venv/bin/pip" show litellm 2>/dev/null | awk '/^Version:/ {print $2}')
  STUB_API_BASE="$stub/v1" LITELLM_MASTER_KEY=sk-bench-master LITELLM_LOG=ERROR \
    "$litellm_venv/bin/litellm" --config bench/litellm-config.yaml --host 127.0.0.1 --port "$litellm_port" \
    --num_workers 1 > "$work/litellm.log" 2>&1 &
  litellm_pid=$!
  pids+=($litellm_pid)
  if wait_for_ok "http://127.0.0.1:$litellm_port/health/liveliness" 120; then
    lurl="http://127.0.0.1:$litellm_port/v1/chat/completions"
    lauth="Authorization: Bearer sk-bench-master"
    load --url "$lurl" -H "$lauth" --max --connections 1 --duration "$warmup" > /dev/null
    measure litellm_one "$litellm_pid" --url "$lurl" -H "$lauth" --max --connections 1 --duration 10
    load --url "$lurl" -H "$lauth" --max --connections "$connections" --duration "$warmup" > /dev/null
    measure litellm_max "$litellm_pid" --url "$lurl" -H "$lauth" --max --connections "$connections" --duration "$duration"
    litellm_rss=$(peak_rss_mb "$litellm_pid")
  else
    litellm_note="skipped: the LiteLLM proxy did not answer on /health/liveliness within 120 s ($(tail -1 "$work/litellm.log" | cut -c1-200))"
  fi
  kill "$litellm_pid" 2>/dev/null || true
fi

# The report.
row() {
  local name=$1 label=$2
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
    "$(field "$name" '.rps | round')" \
    "$(field "$name" '.latency_ms.p50')" "$(field "$name" '.latency_ms.p90')" \
    "$(field "$name" '.latency_ms.p99')" "$(field "$name" '.latency_ms.p99_9')" \
    "$(field "$name" '.latency_ms.max')" \
    "$(field "$name" 'if .errors == 0 then "0" else "\(.errors) \(.errors_by_status | tostring)" end')" \
    "$(field "$name" '.cpu_ms_per_req // "–"')" "$(field "$name" '.other_cpu_cores')"
}
diff_ms() { awk -v a="$(field "$1" "$3")" -v b="$(field "$2" "$3")" 'BEGIN {printf "%.3f", a - b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "n/a"}'; }
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

{
  cat <<MD
# LLM gateway benchmark results

\`./scripts/bench-gateway.sh\`, release build, $(date -u +%Y-%m-%d), commit $commit, $(nproc) cores ($cpu_model), $(uname -m). The stub upstream (\`paved-llm-stub\`, answers at once), Paved, LiteLLM and the load generator (\`llm-load\`, one runtime thread) share the machine. Request: \`$body\`. Latencies in ms; open-loop latency counts from each request's scheduled send time (no coordinated omission); percentiles are exact. CPU is Paved's (or LiteLLM's) user + system time over the measured run divided by its requests; "other CPU" is what the rest of the machine (not the stub, the server or \`llm-load\`) used meanwhile, in cores — near 0 means nothing else interfered.

| run | req/s | p50 | p90 | p99 | p99.9 | max | errors | CPU ms/req | other CPU |
|---|---|---|---|---|---|---|---|---|---|
MD
  row direct_rate "(a) stub direct, open loop $rate req/s, ${duration} s"
  row gateway_rate "(b) gateway (budgets, Idempotency-Key, metrics), open loop $rate req/s, ${duration} s"
  row direct_high "(a5) stub direct, open loop $high_rate req/s, ${duration} s"
  row gateway_high "(b5) gateway (budgets, Idempotency-Key, metrics), open loop $high_rate req/s, ${duration} s"
  row gateway_max "(c) gateway, closed loop $connections connections, ${duration} s"
  row direct_max "(d) stub direct, closed loop $connections connections, ${duration} s"
  row gateway_one "gateway, closed loop 1 connection, 10 s"
  row direct_route_rate "(f0) stub direct, open loop $route_rate req/s, ${duration} s"
  row routed_rate "(f) gateway with routing (2 deployments + fallback), a cache lookup (miss) and guardrails (7 detectors, redacting), open loop $route_rate req/s, ${duration} s"
  row cache_hit_rate "(g) gateway answering from the cache (same settings), open loop $route_rate req/s, ${duration} s"
  if [ -z "$litellm_note" ]; then
    row litellm_one "(e) LiteLLM $litellm_version proxy, closed loop 1 connection, 10 s"
    row litellm_max "(e) LiteLLM $litellm_version proxy, closed loop $connections connections, ${duration} s"
  fi
  cat <<MD

| derived | value |
|---|---|
| latency the gateway adds at $rate req/s, p50 / p99 ((b) − (a)) | $(diff_ms gateway_rate direct_rate .latency_ms.p50) ms / $(diff_ms gateway_rate direct_rate .latency_ms.p99) ms |
| latency the gateway adds at $high_rate req/s, p50 / p99 ((b5) − (a5)); goal p99 ≤ 1 ms | $(diff_ms gateway_high direct_high .latency_ms.p50) ms / $(diff_ms gateway_high direct_high .latency_ms.p99) ms$(field gateway_high 'if .rps < (.target_rps * 0.98) then " (only \(.rps | round) req/s reached)" else "" end') |
| gateway's own overhead (\`llm_gateway_overhead_seconds\`, total minus upstream), mean over run (b) | $overhead_mean ms over $overhead_count calls |
| max throughput through the gateway / direct ((c) / (d)) | $(field gateway_max '.rps | round') / $(field direct_max '.rps | round') req/s |
| Paved CPU per request at $rate req/s / at max throughput | $(field gateway_rate .cpu_ms_per_req) ms / $(field gateway_max .cpu_ms_per_req) ms |
| Paved RSS idle / peak (VmHWM) after all runs | $idle_rss MB / $peak_rss MB |
| calls counted by \`llm_requests_total\` (all runs, warm-ups included) | $gw_counted |
| latency added at $route_rate req/s with routing, a cache lookup and guardrails, p50 / p99 ((f) − (f0)); goal p99 ≤ 1.5 ms | $(diff_ms routed_rate direct_route_rate .latency_ms.p50) ms / $(diff_ms routed_rate direct_route_rate .latency_ms.p99) ms |
| gateway's own overhead in run (f), mean | $routed_overhead ms |
| a cache hit at $route_rate req/s, p50 / p99 over HTTP ((g)); goal p99 ≤ 0.5 ms | $(field cache_hit_rate .latency_ms.p50) ms / $(field cache_hit_rate .latency_ms.p99) ms |
| cache lookups counted by \`llm_cache_requests_total\` (hits and misses, all runs) | $hits |
MD
  if [ -z "$litellm_note" ]; then
    cat <<MD
| LiteLLM / Paved p50 latency, 1 connection | $(field litellm_one .latency_ms.p50) / $(field gateway_one .latency_ms.p50) ms = $(ratio "$(field litellm_one .latency_ms.p50)" "$(field gateway_one .latency_ms.p50)")× |
| Paved / LiteLLM max throughput, $connections connections | $(field gateway_max '.rps | round') / $(field litellm_max '.rps | round') req/s = $(ratio "$(field gateway_max .rps)" "$(field litellm_max .rps)")× |
| LiteLLM CPU per request at max throughput / peak RSS | $(field litellm_max .cpu_ms_per_req) ms / $litellm_rss MB |

LiteLLM ran as \`litellm --config bench/litellm-config.yaml --num_workers 1\` (one process; model \`openai/stub-chat\`, \`api_base\` the stub, a master key and no database, so without virtual keys, budgets or spend tracking — less work per request than Paved's gateway does here).
MD
  else
    printf '\nLiteLLM: %s\n' "$litellm_note"
  fi
  printf '\n<details><summary>llm-load output</summary>\n\n```\n'
  for name in direct_rate gateway_rate direct_high gateway_high gateway_max direct_max gateway_one direct_route_rate routed_rate cache_hit_rate litellm_one litellm_max; do
    [ -f "$work/$name.json" ] && printf '%s: %s\n' "$name" "$(cat "$work/$name.json")"
  done
  printf '```\n</details>\n'
} > bench/gateway-results.md
cat bench/gateway-results.md
