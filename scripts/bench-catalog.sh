#!/usr/bin/env bash
# Catalog benchmarks (release build) on a synthetic catalog from
# bench/catalog_gen.py: 10,000 Components, 1,000 APIs, 200 Groups, 2,000 Users
# (scale 1) and ten times that (scale 10). Results: bench/catalog-results.md.
#   scripts/bench-catalog.sh [SCALES...]   (default: 1 10; BENCH_NO_BUILD=1
#   reuses the last release build)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
scales=("$@"); [ ${#scales[@]} -gt 0 ] || scales=(1 10)

"$ROOT/scripts/setup.sh" demo
command -v wrk >/dev/null || { log "installing wrk"; as_root apt-get install -y -qq wrk >/dev/null; }
if [ "${BENCH_NO_BUILD:-}" = 1 ]; then
  log "BENCH_NO_BUILD=1: using the release build already there"
else
  "$ROOT/scripts/build.sh" --release
fi

work=$(mktemp -d)
port=3330 url="http://127.0.0.1:3330"
export OIDC_PORT=4430 PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc
trap 'stop_stack; rm -rf "$work"' EXIT
oidc_port=$OIDC_PORT
token="bench-admin-token-0123456789abcdef"

results="$work/results.md"
# Starts the release server on this scale's database (appending to its log); sets `server`.
start_paved() {
  PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$url" PAVED_DEMO=true PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/catalog-$scale.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_CATALOG_FILE_ROOTS="$work/synth-$scale" PAVED_SERVICE_TOKENS="bench:$token:platform_admin" \
    "$CARGO_TARGET_DIR/release/paved" >> "$work/paved-$scale.log" 2>&1 &
  server=$!
}
for scale in "${scales[@]}"; do
  log "scale $scale: generating"
  python3 bench/catalog_gen.py "$work/synth-$scale" "$scale"
  start_paved
  wait_for_ok "$url/readyz" 30

  log "scale $scale: ingesting"
  # Another writer takes SQLite's write lock every 20 ms meanwhile, as budget
  # holds and scaffolder claims would: how long does it wait?
  rm -f "$work/probe-stop"
  python3 bench/write_probe.py "$work/catalog-$scale.db" "$work/probe-stop" "$work/probe-$scale.txt" &
  probe=$!
  t0=$(date +%s%N)
  curl -s -o "$work/register.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"type\":\"file\",\"target\":\"$work/synth-$scale/all.yaml\"}" "$url/api/catalog/locations" | grep -q 201 || die "registration failed"
  ingest_s=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9 }")
  touch "$work/probe-stop"; wait "$probe"
  writer_wait=$(cat "$work/probe-$scale.txt")
  # VmHWM: the process's peak resident set so far, i.e. the peak while ingesting.
  ingest_peak=$(( $(awk '/VmHWM/ { print $2 }' "/proc/$server/status") / 1024 ))
  entities=$(curl -s -H "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totalItems"])')

  jar="$work/cookies-$scale"
  form=$(curl -s -L -c "$jar" -b "$jar" "$url/auth/login")
  action=$(echo "$form" | grep -o 'action="[^"]*"' | head -1 | sed 's/action="//; s/"$//')
  curl -s -L -c "$jar" -b "$jar" -o /dev/null -d username=dana -d password=dana-demo "http://127.0.0.1:$oidc_port$action"
  cookie="paved_session=$(awk '$6 == "paved_session" { print $7 }' "$jar")"

  query="$url/api/catalog/entities/by-query?filter=kind=component,spec.type=service&fullTextFilterTerm=payments&limit=50"
  facets="$url/api/catalog/entity-facets?facet=kind&facet=spec.type&facet=spec.lifecycle&facet=metadata.tags&facet=relations.ownedby"
  entity_page="$url/catalog/component/default/comp-00042"
  list_page="$url/catalog"
  run() { wrk -t2 -c"$1" -d"$2" -s bench/latency.lua -H "$3" "$4" | tail -1; }
  run 10 3s "Authorization: Bearer $token" "$query" > /dev/null
  q10=$(run 10 10s "Authorization: Bearer $token" "$query")
  q50=$(run 50 10s "Authorization: Bearer $token" "$query")
  # Backstage's catalog table and search send these (issue 20's side-by-side comparison).
  bs_list=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component&limit=50")
  # The same list with other filters, sorts and a deep page (issue 20: "whatever the filter").
  list_type=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component,spec.type=service&orderField=metadata.name,desc&limit=50")
  list_owner=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component,relations.ownedBy=group:default/group-0157&orderField=metadata.title,asc&limit=50")
  list_lifecycle=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component,spec.lifecycle=production&orderField=spec.owner,asc&limit=50")
  list_deep=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&offset=5000&limit=50")
  bs_text=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-query?filter=kind=component&fullTextFilterTerm=payments&fullTextFilterFields=metadata.name,metadata.title&limit=50")
  bs_facet=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entity-facets?facet=spec.type")
  bs_name=$(run 10 10s "Authorization: Bearer $token" "$url/api/catalog/entities/by-name/component/default/comp-00042")
  f10=$(run 10 10s "Authorization: Bearer $token" "$facets")
  e10=$(run 10 10s "Cookie: $cookie" "$entity_page")
  l10=$(run 10 10s "Cookie: $cookie" "$list_page")
  page_bytes=$(curl -s -H "Cookie: $cookie" "$list_page" | wc -c)
  page_gz=$(curl -s -H "Cookie: $cookie" "$list_page" | gzip -9 | wc -c)
  query_bytes=$(curl -s -H "Authorization: Bearer $token" "$query" | wc -c)
  rss=$(( $(awk '/VmRSS/ { print $2 }' "/proc/$server/status") / 1024 ))
  peak=$(( $(awk '/VmHWM/ { print $2 }' "/proc/$server/status") / 1024 ))
  # RSS counts the memory-mapped database once per connection that maps it;
  # PSS shares those pages out, and the anonymous part is the heap.
  pss=$(( $(awk '/^Pss:/ { print $2 }' "/proc/$server/smaps_rollup") / 1024 ))
  anon=$(( $(awk '/^Anonymous:/ { print $2 }' "/proc/$server/smaps_rollup") / 1024 ))
  kill "$server"; wait "$server" 2>/dev/null || true

  # Start to ready with this catalog already stored (5 starts), then the idle
  # resident set 5 s after the last start.
  ready_ms=()
  for _ in 1 2 3 4 5; do
    t0=$(date +%s%N)
    start_paved
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; do sleep 0.005; done
    ready_ms+=($(( ($(date +%s%N) - t0) / 1000000 )))
    if [ "${#ready_ms[@]}" -lt 5 ]; then kill "$server"; wait "$server" 2>/dev/null || true; fi
  done
  sleep 5
  idle_rss=$(( $(awk '/VmRSS/ { print $2 }' "/proc/$server/status") / 1024 ))
  kill "$server"; wait "$server" 2>/dev/null || true
  ready_sorted=$(printf '%s\n' "${ready_ms[@]}" | sort -n)
  ready_median=$(echo "$ready_sorted" | sed -n 3p) ready_max=$(echo "$ready_sorted" | tail -1)

  cat >> "$results" <<MD
### Scale $scale: $entities entities

| measure | result |
|---|---|
| full ingestion (register + read + store) | ${ingest_s} s |
| another writer during the ingestion (\`BEGIN IMMEDIATE\` every 20 ms): wait | ${writer_wait} |
| \`by-query\` 50 rows, filter + full-text, 10 connections | $q10 |
| same at 50 connections | $q50 |
| facets (5 facets), 10 connections | $f10 |
| entity page SSR (signed in), 10 connections | $e10 |
| list page SSR (signed in), 10 connections | $l10 |
| list page HTML + data | $((page_bytes / 1024)) KB ($((page_gz / 1024)) KB gzipped) |
| \`by-query\` response, 50 full entities | $((query_bytes / 1024)) KB |
| Backstage's list query \`by-query?filter=kind=component&limit=50\`, 10 connections | $bs_list |
| same list, \`spec.type=service\`, by name descending | $list_type |
| same list, one owner (\`relations.ownedBy\`), by title | $list_owner |
| same list, \`spec.lifecycle=production\`, by owner | $list_lifecycle |
| same list, by name, rows 5,001–5,050 | $list_deep |
| Backstage's search \`fullTextFilterFields=metadata.name,metadata.title\`, 10 connections | $bs_text |
| Backstage's \`entity-facets?facet=spec.type\`, 10 connections | $bs_facet |
| \`by-name\`, 10 connections | $bs_name |
| peak RSS while ingesting (VmHWM after registration) | ${ingest_peak} MB |
| RSS after the runs / peak over the runs | ${rss} MB / ${peak} MB |
| after the runs: proportional set (PSS) / anonymous (heap) | ${pss} MB / ${anon} MB |
| start to ready with this catalog stored (5 starts) | median ${ready_median} ms, max ${ready_max} ms |
| idle RSS 5 s after start | ${idle_rss} MB |

MD
done

{
  echo "# Catalog benchmark results"
  echo
  echo "\`./scripts/bench-catalog.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, wrk on the same machine. Latencies in ms."
  echo
  cat "$results"
} > bench/catalog-results.md
cat bench/catalog-results.md
