#!/usr/bin/env bash
# Foundation benchmarks (release build). Not a test: numbers go to
# bench/results.md and the README's performance table.
#   - start to ready with an existing database (10 runs)
#   - idle RSS after start and after load
#   - signed-in home page SSR under 50 concurrent connections (wrk, 20 s)
#   - hydration bundle size (wasm + js, gzip -9)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" demo
command -v wrk >/dev/null || { log "installing wrk"; as_root apt-get install -y -qq wrk >/dev/null; }
"$ROOT/scripts/build.sh" --release

work=$(mktemp -d)
port=3320 url="http://127.0.0.1:3320"
export OIDC_PORT=4420 PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc
trap 'stop_stack; rm -rf "$work"' EXIT
oidc_port=$OIDC_PORT

export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=true PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT"
bin="$CARGO_TARGET_DIR/release/paved"

start_paved() { "$bin" > "$work/paved.log" 2>&1 & server=$!; }
stop_paved() { kill "$server"; wait "$server" 2>/dev/null || true; }

# A first start creates and migrates the database; the measured ones reuse it.
start_paved; wait_for_http "$url/readyz" 30; stop_paved
ready_ms=()
for _ in $(seq 10); do
  t0=$(date +%s%N)
  start_paved
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.005; done
  ready_ms+=($(( ($(date +%s%N) - t0) / 1000000 )))
  stop_paved
done
ready_sorted=$(printf '%s\n' "${ready_ms[@]}" | sort -n)
ready_median=$(echo "$ready_sorted" | sed -n 5p); ready_max=$(echo "$ready_sorted" | tail -1)

start_paved; pids+=("$server")
wait_for_http "$url/readyz" 30

# Sign in as dana through the real provider, as a browser would.
jar="$work/cookies"
form=$(curl -s -L -c "$jar" -b "$jar" "$url/auth/login")
action=$(echo "$form" | grep -o 'action="[^"]*"' | head -1 | sed 's/action="//; s/"$//')
curl -s -L -c "$jar" -b "$jar" -o /dev/null -d username=dana -d password=dana-demo "http://127.0.0.1:$oidc_port$action"
cookie=$(awk '$6 == "paved_session" { print $7 }' "$jar")
[ -n "$cookie" ] || die "sign-in for the benchmark failed"
curl -s -b "paved_session=$cookie" "$url/" | grep -q 'Hi Dana' || die "the home page did not render for the signed-in user"

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$server/status"; }
sleep 1
rss_idle=$(( $(rss_kb) / 1024 ))

wrk -t2 -c50 -d5s -H "Cookie: paved_session=$cookie" "$url/" > /dev/null
wrk -t2 -c50 -d20s --latency -H "Cookie: paved_session=$cookie" "$url/" > "$work/wrk.txt"
p50=$(awk '/^ +50%/ { print $2 }' "$work/wrk.txt"); p99=$(awk '/^ +99%/ { print $2 }' "$work/wrk.txt")
rps=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.txt")
errors=$(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" || true)
rss_loaded=$(( $(rss_kb) / 1024 ))

wasm_gz=$(gzip -9 -c "$SITE_ROOT/pkg/paved.wasm" | wc -c)
js_gz=$(gzip -9 -c "$SITE_ROOT/pkg/paved.js" | wc -c)
bundle_kb=$(( (wasm_gz + js_gz) / 1024 ))

mkdir -p bench
cat > bench/results.md <<MD
# Foundation benchmark results

\`./scripts/bench.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). wrk and the server share the machine.

| target | goal | measured |
|---|---|---|
| start to ready, existing database (10 runs) | ≤ 1 s | median ${ready_median} ms, max ${ready_max} ms |
| idle RSS | ≤ 60 MB | ${rss_idle} MB idle, ${rss_loaded} MB after the load test |
| signed-in home page SSR, 50 connections, 20 s | p50 ≤ 5 ms, p99 ≤ 20 ms | p50 ${p50}, p99 ${p99}, ${rps} req/s |
| hydration bundle, gzip -9 | ≤ 400 KB | ${bundle_kb} KB (wasm $((wasm_gz / 1024)) KB + js $((js_gz / 1024)) KB) |

${errors:+wrk reported: ${errors}}

<details><summary>wrk output</summary>

\`\`\`
$(cat "$work/wrk.txt")
\`\`\`
</details>
MD
cat bench/results.md
