#!/usr/bin/env bash
# Kubernetes runtime-view benchmark (release build). Not a test: numbers go to
# bench/kube-results.md and the README.
#   - a service with 50 pods (and 450 pods of nine other services in its
#     namespace, 200 events) in a cluster played by kube-stub
#   - the runtime view over HTTP from cached data: open loop at 200/s and
#     flat out with 10 connections (`llm-load`, latency from each request's
#     scheduled time)
#   - requests the cluster received per refresh interval, whatever the viewers
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
if [ "${BENCH_NO_BUILD:-}" = 1 ]; then
  log "BENCH_NO_BUILD=1: using the release binaries already built"
else
  log "building paved, kube-stub and llm-load (release)"
  cargo build --locked -p paved -p paved-kube-stub --profile release
  cargo build --locked -p paved-llm-stub --profile release --bins
fi
bin="$CARGO_TARGET_DIR/release"
for b in paved kube-stub llm-load; do [ -x "$bin/$b" ] || die "$bin/$b is missing"; done

work=$(mktemp -d)
trap 'stop_stack; [ "${BENCH_KEEP:-}" = 1 ] || rm -rf "$work"' EXIT
pids=()
mkdir -p "$work/fixtures"
objects=$(python3 bench/kube_gen.py "$work/fixtures/payments.json")
kube_port=6460
"$bin/kube-stub" --addr "127.0.0.1:$kube_port" --fixtures "$work/fixtures" --write-kubeconfig "$work/stub.kubeconfig" > "$work/kube-stub.log" 2>&1 &
pids+=($!)
wait_for_ok "http://127.0.0.1:$kube_port/version" 30 || die "kube-stub did not start"
refresh=5
printf 'clusters:\n  - name: prod-eu\n    kubeconfig: stub.kubeconfig\n    production: true\n' > "$work/clusters.yaml"

token=bench-dev-0123456789abcdef
port=3350 url="http://127.0.0.1:3350"
export PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$url" PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$work" \
  PAVED_OIDC_ISSUER="http://127.0.0.1:9" PAVED_OIDC_CLIENT_ID=paved PAVED_OIDC_CLIENT_SECRET=paved-demo-secret \
  PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog" PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml" \
  PAVED_KUBE_CLUSTERS="$work/clusters.yaml" PAVED_KUBE_REFRESH_SECONDS=$refresh \
  PAVED_SERVICE_TOKENS="bench:$token:developer:payments"
run_paved "$work/paved.log" "$bin/paved"
view="$url/api/kube/v1/entities/component/default/payments-api/runtime"
first=$(curl -sf -H "Authorization: Bearer $token" "$view")
pods=$(jq '.clusters[0].pods | length' <<<"$first")
problems=$(jq -r '[.clusters[0].problems[] | "\(.code) ×\(.count)"] | join(", ")' <<<"$first")
[ "$pods" = 50 ] || die "the view shows $pods pods, not 50: $first"
bytes=${#first}

load() { "$bin/llm-load" --url "$view" --method GET --header "Authorization: Bearer $token" "$@"; }
stub_total() { curl -s "http://127.0.0.1:$kube_port/_stub/requests" | jq .total; }
log "runtime view, 200/s open loop, 30 s"
before=$(stub_total)
load --rate 200 --duration 30 --warmup 2 > "$work/open.json"
after=$(stub_total)
open_requests=$((after - before))
log "runtime view, flat out, 10 connections, 30 s"
before=$(stub_total)
load --max --connections 10 --duration 30 --warmup 2 > "$work/max.json"
after=$(stub_total)
max_requests=$((after - before))
rss=$(awk '/^VmHWM:/ {printf "%d", $2 / 1024}' "/proc/$paved_pid/status")
field() { jq -r "$2" "$work/$1.json"; }
# Each refresh of a namespace is one list per kind of object (10).
per_interval() { awk -v r="$1" -v d="$2" -v i="$refresh" 'BEGIN {printf "%.1f", r / (d / i)}'; }

cat > bench/kube-results.md <<MD
# Kubernetes benchmark results

\`./scripts/bench-kube.sh\`, release build of $commit, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). The cluster is \`kube-stub\` holding $objects (payments-api: 50 pods, 40 ready, 5 crash-looping, 3 pulling a missing image, 2 OOM-killed and restarted; nine other services with 50 pods each in the same namespace; 200 events). Paved reads it every $refresh s (\`PAVED_KUBE_REFRESH_SECONDS\`). The load generator (\`llm-load\`, one thread), Paved and the stub share the machine. Latencies in ms, from each request's scheduled time (open loop: no coordinated omission). One answer is $bytes bytes of JSON ($pods pods; problems: $problems).

| load | requests | errors | p50 | p95 | p99 | max | achieved/s | requests the cluster received | per refresh interval |
|---|---|---|---|---|---|---|---|---|---|
| 200/s, 30 s | $(field open .requests) | $(field open .errors) | $(field open .latency_ms.p50) | $(field open .latency_ms.p95) | $(field open .latency_ms.p99) | $(field open .latency_ms.max) | $(field open .rps) | $open_requests | $(per_interval "$open_requests" 32) |
| flat out, 10 connections, 30 s | $(field max .requests) | $(field max .errors) | $(field max .latency_ms.p50) | $(field max .latency_ms.p95) | $(field max .latency_ms.p99) | $(field max .latency_ms.max) | $(field max .rps) | $max_requests | $(per_interval "$max_requests" 32) |

Goals: the runtime view of a service with 50 pods from cached data p95 ≤ 20 ms; one cluster read per refresh interval per cluster whatever the number of viewers. A read is one list per kind of object Paved shows (pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, autoscalers, Services, Ingresses, events): 10 requests, so 10 per interval is one read. Paved's peak RSS over the runs: $rss MB.
MD
cat bench/kube-results.md
