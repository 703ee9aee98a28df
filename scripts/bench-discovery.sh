#!/usr/bin/env bash
# Discovery benchmark (release build; the GitHub stand-in, a local OpenBao).
# Not a test: numbers go to bench/discovery-results.md and the README.
#   - first read of an organization of BENCH_REPOS (2,000) repositories through
#     a github-discovery location: seconds, requests, most requests in flight
#   - an unchanged rescan: seconds and requests per repository
#   - a signed push webhook: milliseconds until the entity shows the change
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
repos=${BENCH_REPOS:-2000}

"$ROOT/scripts/setup.sh" demo
command -v jq >/dev/null || { log "installing jq"; as_root apt-get install -y -qq jq >/dev/null; }
"$ROOT/scripts/build.sh" --release
cargo build --locked --release -p paved-githost-stub
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
port=3360 url="http://127.0.0.1:3360" stub_port=9460
export VAULT_PORT=8260 VAULT_TOKEN=paved-bench-root PAVED_PUBLIC_URL="$url"
start_stack "$work" vault
trap 'stop_stack; rm -rf "$work"' EXIT
secret="bench-webhook-secret"
curl -sf -X POST -H "X-Vault-Token: $VAULT_TOKEN" \
  -d "{\"data\":{\"token\":\"bench-github-token\",\"webhook_secret\":\"$secret\"}}" \
  "$VAULT_ADDR/v1/secret/data/platform/git/github.com" > /dev/null

"$bin/paved-githost-stub" --port "$stub_port" --repos "$repos" --token bench-github-token > "$work/stub.log" 2>&1 &
pids+=($!)
stats="http://127.0.0.1:$((stub_port + 1))/_stub/stats"
wait_for_ok "$stats" 60 || die "the stand-in did not start: $(cat "$work/stub.log")"
cat > "$work/integrations.yaml" <<YAML
integrations:
  - host: github.com
    kind: github
    api_base_url: http://127.0.0.1:$stub_port
    credential: git/github.com
YAML
token=bench-admin-0123456789abcdef
export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=false PAVED_LOG=warn \
  PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
  PAVED_OIDC_ISSUER="http://127.0.0.1:9" PAVED_OIDC_CLIENT_ID=paved PAVED_OIDC_CLIENT_SECRET=paved-demo-secret \
  PAVED_SERVICE_TOKENS="bench:$token:platform_admin" PAVED_INTEGRATIONS="$work/integrations.yaml" \
  PAVED_CATALOG_REFRESH_MINUTES=1440
run_paved "$work/paved.log" "$bin/paved"
auth="Authorization: Bearer $token"
ms() { date +%s%3N; }
requests() { curl -sf "$stats" | jq .requests; }

log "first read of $repos repositories"
t0=$(ms)
code=$(curl -s -o "$work/register.json" -w '%{http_code}' -X POST -H "$auth" -H 'content-type: application/json' \
  -d '{"type":"github-discovery","target":"https://github.com/acme/*/blob/-/catalog-info.yaml"}' "$url/api/catalog/locations")
first_ms=$(( $(ms) - t0 ))
[ "$code" = 201 ] || die "registering the discovery location answered $code: $(head -c 500 "$work/register.json")"
first_requests=$(requests)
most=$(curl -sf "$stats" | jq .most_in_flight)
entities=$(curl -s -H "$auth" "$url/api/catalog/entities/by-query?limit=1&filter=kind=component" | jq .totalItems)
[ "$entities" = "$repos" ] || die "expected $repos components, found $entities"

log "unchanged rescan"
before=$(requests)
t0=$(ms)
curl -sf -X POST -H "$auth" -H 'content-type: application/json' -d '{}' "$url/api/catalog/refresh" > /dev/null
rescan_ms=$(( $(ms) - t0 ))
rescan_requests=$(( $(requests) - before ))

log "push webhook"
curl -sf -X POST -H 'content-type: application/json' "http://127.0.0.1:$((stub_port + 1))/_stub/file" \
  -d '{"repo":"acme/svc-0007","path":"catalog-info.yaml","content":"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc-0007\n  description: pushed\nspec:\n  type: service\n  lifecycle: production\n  owner: group:default/team-7\n"}'
body='{"ref":"refs/heads/main","repository":{"full_name":"acme/svc-0007","html_url":"https://github.com/acme/svc-0007"}}'
signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/.*= //')"
t0=$(ms)
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -H 'x-github-event: push' \
  -H "x-hub-signature-256: $signature" -d "$body" "$url/api/catalog/webhooks/github")
[ "$code" = 202 ] || die "the push delivery answered $code"
until [ "$(curl -s -H "$auth" "$url/api/catalog/entities/by-name/component/default/svc-0007" | jq -r .metadata.description)" = pushed ]; do
  [ $(( $(ms) - t0 )) -gt 30000 ] && die "the push was not applied within 30 s"
  sleep 0.01
done
push_ms=$(( $(ms) - t0 ))
violations=$(curl -sf "$stats" | jq .violations)

commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
cat > bench/discovery-results.md <<MD
# Discovery benchmark

\`scripts/bench-discovery.sh\` on $(nproc) cores, commit $commit, $(date -u +%Y-%m-%d).
An organization of $repos public repositories on the GitHub stand-in (\`paved-githost-stub\`, every request checked against GitHub's OpenAPI description: $violations violations), each with a \`catalog-info.yaml\`; Paved release build, SQLite.

| measurement | result | target |
|---|---|---|
| first full read (list, read each file, register $repos locations and entities) | $(awk "BEGIN { printf \"%.1f\", $first_ms / 1000 }") s, $first_requests requests | ≤ 60 s |
| most requests in flight at once | $most | ≤ 4 per host |
| unchanged rescan | $(awk "BEGIN { printf \"%.1f\", $rescan_ms / 1000 }") s, $rescan_requests requests ($(awk "BEGIN { printf \"%.2f\", $rescan_requests / $repos }") per repository) | ≤ 5 s, ≤ 1 per repository |
| push webhook until the entity shows the change | $push_ms ms | ≤ 2 s |
MD
cat bench/discovery-results.md
