#!/usr/bin/env bash
# Platform-as-product benchmark (release build, the demo OpenID provider).
# Not a test: numbers go to bench/platform-results.md and the README.
#   - a company of BENCH_TEAMS (1,000) teams and BENCH_PEOPLE (20,000) people,
#     50 survey rounds (40% answering each), 1,000,000 gateway usage records,
#     3,000 golden-path runs (bench/platform_gen.py), and the delivery
#     benchmark's year of GitHub deliveries for 500 components
#   - the PM's Platform home (SSR, signed in), 50 connections, 20 s
#   - a survey's results page (8,000 answers), 50 connections, 20 s
#   - answering the open survey as 200 different people taking turns: 1,000
#     answers/s open loop (at most 50 connections), then 50 connections flat out
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
teams=${BENCH_TEAMS:-1000}
people=${BENCH_PEOPLE:-20000}
usage=${BENCH_USAGE:-1000000}
rounds=${BENCH_ROUNDS:-200}
components=500

"$ROOT/scripts/setup.sh" demo
command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
"$ROOT/scripts/build.sh" --release
cargo build --locked --release -p paved-llm-stub --bin events-load --bin llm-load
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
port=3371 url="http://127.0.0.1:3371"
export OIDC_PORT=4471 PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc
# BENCH_KEEP=1 keeps the database (and prints where) for looking into a number.
if [ -n "${BENCH_KEEP:-}" ]; then trap 'stop_stack; log "kept $work"' EXIT; else trap 'stop_stack; rm -rf "$work"' EXIT; fi
oidc_port=$OIDC_PORT

mkdir -p "$work/catalog"
"$bin/events-load" catalog --components "$components" --teams "$teams" > "$work/catalog/bench.yaml"
token=bench-admin-0123456789abcdef secret=bench-github-secret
export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=true PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_SERVICE_TOKENS="bench:$token:platform_admin" PAVED_EVENTS_GITHUB_SECRET="$secret" \
  PAVED_CATALOG_FILE_ROOTS="$work/catalog" PAVED_CATALOG_LOCATIONS="file:$work/catalog/bench.yaml" \
  PAVED_CATALOG_REFRESH_MINUTES=1440 PAVED_SURVEY_KEY=bench-survey-key-0123456789abcdef0123456789
auth="Authorization: Bearer $token"

log "migrating and loading the catalog"
run_paved "$work/paved.log" "$bin/paved"
until [ "$(curl -s -H "$auth" "$url/api/catalog/entities/by-query?limit=1&filter=kind=component" | jq .totalItems)" = "$components" ]; do sleep 0.2; done
kill "$paved_pid"; wait "$paved_pid" 2>/dev/null || true

log "generating $teams teams, $people people, 50 survey rounds, $usage usage records"
now=$(date +%s)
t0=$(date +%s)
python3 bench/platform_gen.py "$work/paved.db" "$now" "$work/tokens" \
  --teams "$teams" --people "$people" --usage "$usage"
gen_s=$(( $(date +%s) - t0 ))

run_paved "$work/paved.log" "$bin/paved"
server=$paved_pid
log "sending a year of deliveries for $components components"
"$bin/events-load" send --url "$url" --secret "$secret" --components "$components" --rounds "$rounds" \
  --connections 8 > "$work/ingest.json" || { cat "$work/ingest.json"; die "deliveries failed"; }
db_mb=$(( $(stat -c %s "$work/paved.db") / 1048576 ))

# Sign in as pat (platform PM) through the real provider.
cookie=$(bench_sign_in pat "$oidc_port" "$work/cookies")

home="$url/platform"
curl -s -b "paved_session=$cookie" "$home" | grep -q 'data-testid="team-comparison"' || die "the Platform home did not render"
results_page="$url/surveys/bench-round-048"
curl -s -b "paved_session=$cookie" "$results_page" | grep -q 'Platform pulse, round 49' || die "the results page did not render"
results_api="$url/api/outcomes/v1/surveys/bench-round-048/results"
responses=$(curl -s -H "$auth" "$results_api" | jq .responses)
[ "$responses" -gt 1000 ] || die "the survey has $responses answers"
answer="$url/api/outcomes/v1/surveys/bench-round-049/answer"
body='{"score":9,"drivers":[4,3,5]}'
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$(head -1 "$work/tokens")" -H 'content-type: application/json' -d "$body" "$answer")
[ "$code" = 200 ] || die "answering the open survey answered $code"

load() { "$bin/llm-load" --max --connections 50 --warmup 3 --duration 20 "$@"; }
log "Platform home, 50 connections"
load --url "$home" --header "Cookie: paved_session=$cookie" > "$work/home.json"
log "survey results page, 50 connections"
load --url "$results_page" --header "Cookie: paved_session=$cookie" > "$work/results.json"
log "survey results API, 50 connections"
load --url "$results_api" --header "$auth" > "$work/results_api.json"
log "answering a survey as 200 people: 1,000 answers/s, at most 50 connections"
"$bin/llm-load" --rate 1000 --connections 50 --warmup 3 --duration 20 --url "$answer" --method PUT --body "$body" \
  --header-file "$work/tokens" > "$work/answer.json"
log "answering a survey as 200 people, 50 connections as fast as it goes"
load --url "$answer" --method PUT --body "$body" --header-file "$work/tokens" > "$work/answer_max.json"
rss_mb=$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$server/status")

j() { jq -r "$2" "$work/$1.json"; }
row() { echo "p95 $(j "$1" .latency_ms.p95) ms (p50 $(j "$1" .latency_ms.p50) ms, $(j "$1" .rps) req/s, $(j "$1" .errors) errors)"; }
mkdir -p bench
cat > bench/platform-results.md <<MD
# Platform-as-product benchmark results

\`./scripts/bench-platform.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). The load generator and the server share the machine.

Data: $teams teams, $people people, 50 survey rounds (a week apart, 40% of people answering each: $responses answers in the round measured), $usage gateway usage records over 30 days, 3,000 golden-path runs, and $(j ingest .deliveries) GitHub deliveries for $components components ($(j ingest .deployments) deployments). Generated in ${gen_s} s; database ${db_mb} MB; server RSS after the runs ${rss_mb} MB.

| target | goal | measured |
|---|---|---|
| PM Platform home (\`/platform\`, SSR, signed in), 50 connections | p95 ≤ 200 ms | $(row home) |
| a survey's results page (\`/surveys/{id}\`, SSR), 50 connections | p95 ≤ 50 ms | $(row results) |
| the same results from the API, 50 connections | | $(row results_api) |
| answering a survey (\`PUT …/answer\`, 200 people taking turns), 1,000 answers/s (open loop: latency from each answer's scheduled time), at most 50 connections | p95 ≤ 10 ms | $(row answer) |
| the same, 50 connections as fast as answers are taken (closed loop) | | $(row answer_max) |

<details><summary>raw</summary>

\`\`\`
$(cat "$work/ingest.json")
$(cat "$work/home.json")
$(cat "$work/results.json")
$(cat "$work/results_api.json")
$(cat "$work/answer.json")
$(cat "$work/answer_max.json")
\`\`\`
</details>
MD
cat bench/platform-results.md
