#!/usr/bin/env bash
# Delivery-outcomes benchmark (release build, the demo OpenID provider).
# Not a test: numbers go to bench/outcomes-results.md and the README.
#   - a year of GitHub webhook deliveries for BENCH_COMPONENTS (500) components
#     (200 deployments each with 10 commits, an incident every 20th: 100,000
#     deployments, 1,000,000 commits, 5,000 incidents), every delivery signed,
#     sent over BENCH_CONNECTIONS (8) connections as fast as Paved answers:
#     deliveries per second
#   - a team's Outcomes page (10 components), signed in, 10 connections, 20 s
#   - one component's DORA API, 10 connections, 20 s
#   - a mapping change (a component's project-slug edited, the catalog
#     refreshed): seconds until its numbers follow
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
components=${BENCH_COMPONENTS:-500}
rounds=${BENCH_ROUNDS:-200}
connections=${BENCH_CONNECTIONS:-8}

"$ROOT/scripts/setup.sh" demo
command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
"$ROOT/scripts/build.sh" --release
cargo build --locked --release -p paved-llm-stub --bin events-load --bin llm-load
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
port=3370 url="http://127.0.0.1:3370"
export OIDC_PORT=4470 PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc
# BENCH_KEEP=1 keeps the database and logs (and prints where).
if [ -n "${BENCH_KEEP:-}" ]; then trap 'stop_stack; log "kept $work"' EXIT; else trap 'stop_stack; rm -rf "$work"' EXIT; fi
oidc_port=$OIDC_PORT

mkdir -p "$work/catalog"
"$bin/events-load" catalog --components "$components" --teams 50 > "$work/catalog/bench.yaml"
token=bench-admin-0123456789abcdef secret=bench-github-secret
export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=true PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_SERVICE_TOKENS="bench:$token:platform_admin" PAVED_EVENTS_GITHUB_SECRET="$secret" \
  PAVED_CATALOG_FILE_ROOTS="$work/catalog" PAVED_CATALOG_LOCATIONS="file:$work/catalog/bench.yaml" \
  PAVED_CATALOG_REFRESH_MINUTES=1440
run_paved "$work/paved.log" "$bin/paved"
server=$paved_pid
auth="Authorization: Bearer $token"
ms() { date +%s%3N; }
until [ "$(curl -s -H "$auth" "$url/api/catalog/entities/by-query?limit=1&filter=kind=component" | jq .totalItems)" = "$components" ]; do sleep 0.2; done

log "sending a year of deliveries for $components components"
"$bin/events-load" send --url "$url" --secret "$secret" --components "$components" --rounds "$rounds" \
  --connections "$connections" > "$work/ingest.json" || { cat "$work/ingest.json"; tail -n 20 "$work/paved.log"; die "deliveries failed"; }
cat "$work/ingest.json"
rss_mb=$([ -n "$server" ] && awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$server/status" || echo "?")
db_mb=$(( $(stat -c %s "$work/paved.db") / 1048576 ))

# Sign in as pat (platform PM: reads every team's outcomes) through the real provider.
cookie=$(bench_sign_in pat "$oidc_port" "$work/cookies")
page="$url/teams/team-07/outcomes"
curl -s -b "paved_session=$cookie" "$page" | grep -q 'Deployment frequency' || die "the team Outcomes page did not render"
api="$url/api/outcomes/v1/components/default/svc-0007/dora"
deployments=$(curl -s -H "$auth" "$api" | jq .deployment_frequency.deployments)
[ "$deployments" -gt 0 ] || die "the component has no deployments in its window"

log "team Outcomes page, 10 connections"
"$bin/llm-load" --url "$page" --header "Cookie: paved_session=$cookie" --max --connections 10 --warmup 3 --duration 20 > "$work/page.json"
log "component DORA API, 10 connections"
"$bin/llm-load" --url "$api" --header "$auth" --max --connections 10 --warmup 3 --duration 20 > "$work/api.json"

log "mapping change"
sed -i 's#github.com/project-slug: acme/svc-0007$#github.com/project-slug: acme/elsewhere#' "$work/catalog/bench.yaml"
t0=$(ms)
curl -sf -X POST -H "$auth" -H 'content-type: application/json' -d '{}' "$url/api/catalog/refresh" > /dev/null
until [ "$(curl -s -H "$auth" "$api" | jq .deployment_frequency.deployments)" = 0 ]; do
  [ $(( $(ms) - t0 )) -gt 60000 ] && die "the mapping change did not show within 60 s"
  sleep 0.05
done
unmap_ms=$(( $(ms) - t0 ))
sed -i 's#github.com/project-slug: acme/elsewhere$#github.com/project-slug: acme/svc-0007#' "$work/catalog/bench.yaml"
t0=$(ms)
curl -sf -X POST -H "$auth" -H 'content-type: application/json' -d '{}' "$url/api/catalog/refresh" > /dev/null
until [ "$(curl -s -H "$auth" "$api" | jq .deployment_frequency.deployments)" = "$deployments" ]; do
  [ $(( $(ms) - t0 )) -gt 60000 ] && die "the mapping change back did not show within 60 s"
  sleep 0.05
done
remap_ms=$(( $(ms) - t0 ))

j() { jq -r "$2" "$work/$1.json"; }
mkdir -p bench
cat > bench/outcomes-results.md <<MD
# Delivery outcomes benchmark results

\`./scripts/bench-outcomes.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). The load generators and the server share the machine.

Data: $components components in 50 teams, a year of GitHub deliveries: $(j ingest .deployments) deployments, $(j ingest .commits) commits, $(( components * rounds / 20 )) incidents ($(j ingest .deliveries) signed deliveries). Database after ingestion: ${db_mb} MB; server RSS ${rss_mb} MB.

| target | goal | measured |
|---|---|---|
| webhook ingestion, signatures verified, $connections connections | ≥ 5,000 deliveries/s | $(j ingest .deliveries_per_second) deliveries/s ($(j ingest .seconds) s; p50 $(j ingest .latency_ms.p50) ms, p95 $(j ingest .latency_ms.p95) ms; $(j ingest .failed) failed) |
| team Outcomes page (10 components), SSR, 10 connections | p95 ≤ 100 ms | p95 $(j page .latency_ms.p95) ms (p50 $(j page .latency_ms.p50) ms, $(j page .rps) pages/s, $(j page .errors) errors) |
| one component's DORA API, 10 connections | p95 ≤ 20 ms | p95 $(j api .latency_ms.p95) ms (p50 $(j api .latency_ms.p50) ms, $(j api .rps) req/s, $(j api .errors) errors) |
| mapping change re-computed (catalog refresh included) | ≤ 10 s | unmapped in ${unmap_ms} ms, mapped back in ${remap_ms} ms |

<details><summary>raw</summary>

\`\`\`
$(cat "$work/ingest.json")
$(cat "$work/page.json")
$(cat "$work/api.json")
\`\`\`
</details>
MD
cat bench/outcomes-results.md
