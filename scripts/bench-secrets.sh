#!/usr/bin/env bash
# Secrets benchmarks (release build, local OpenBao dev server). Not a test:
# numbers go to bench/secrets-results.md and the README.
#   - provisioning one secret with its policy and role (PUT, one connection, 20 s)
#   - the secrets section of an entity page with 50 secrets (the panel's server
#     function, and the whole entity page SSR), 10 connections, 20 s
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" demo
command -v wrk >/dev/null || { log "installing wrk"; as_root apt-get install -y -qq wrk >/dev/null; }
"$ROOT/scripts/build.sh" --release

work=$(mktemp -d)
port=3330 url="http://127.0.0.1:3330"
export OIDC_PORT=4430 VAULT_PORT=8230 VAULT_TOKEN=paved-bench-root PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc vault
trap 'stop_stack; rm -rf "$work"' EXIT
oidc_port=$OIDC_PORT

token=bench-token-0123456789abcdef
export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=true PAVED_LOG=warn \
PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog" PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml" \
PAVED_SERVICE_TOKENS="bench:$token:developer:payments"
run_paved "$work/paved.log" "$CARGO_TARGET_DIR/release/paved"

auth="Authorization: Bearer $token"
# Provisioning: every request rotates the secret and converges its policy and role.
wrk -t1 -c1 -d3s -s bench/secret-put.lua -H "$auth" "$url/api/secrets/v1/payments/payments-api/bench" > /dev/null
provision=$(wrk -t1 -c1 -d20s -s bench/secret-put.lua -H "$auth" "$url/api/secrets/v1/payments/payments-api/bench" | tail -1)
versions=$(curl -s -H "$auth" "$url/api/secrets/v1/payments/payments-api/bench" | grep -o '"current_version":[0-9]*' | cut -d: -f2)

# 50 secrets on the service (one already exists).
for i in $(seq 2 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$auth" -H 'Content-Type: application/json' \
    -d '{"data": {"KEY": "value"}}' "$url/api/secrets/v1/payments/payments-api/s$i")
  [ "$code" = 201 ] || die "seeding secret s$i answered $code"
done
count=$(curl -s -H "$auth" "$url/api/secrets/v1/payments/payments-api" | grep -o '"name":' | wc -l)
[ "$count" = 50 ] || die "expected 50 secrets, found $count"

# The panel's data (the server function the section renders from), as dana's session would call it.
cookie=$(bench_sign_in dana "$oidc_port" "$work/cookies")
page="$url/catalog/component/default/payments-api"
curl -s -b "paved_session=$cookie" "$page" | grep -q 'agent-inject-secret-s50' || die "the entity page does not show the 50 secrets"
printf 'wrk.method = "POST"\nwrk.body = "team=payments&holder=payments-api"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Accept"] = "application/json"\n' > "$work/panel.lua"
cat bench/latency.lua >> "$work/panel.lua"
wrk -t2 -c10 -d3s -s "$work/panel.lua" -H "$auth" "$url/api/secrets_panel" > /dev/null
panel=$(wrk -t2 -c10 -d20s -s "$work/panel.lua" -H "$auth" "$url/api/secrets_panel" | tail -1)
wrk -t2 -c10 -d3s -s bench/latency.lua -H "Cookie: paved_session=$cookie" "$page" > /dev/null
entity=$(wrk -t2 -c10 -d20s -s bench/latency.lua -H "Cookie: paved_session=$cookie" "$page" | tail -1)
bytes=$(curl -s -b "paved_session=$cookie" "$page" | wc -c)

cat > bench/secrets-results.md <<MD
# Secrets benchmark results

\`./scripts/bench-secrets.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). OpenBao $(bao version | awk '{print $2}') dev server, wrk and Paved share the machine. Latencies in ms.

| what | goal | measured |
|---|---|---|
| provision a secret with its policy and role (\`PUT /api/secrets/v1/…\`, 1 connection, 20 s; $versions versions written) | p95 ≤ 150 ms | $provision |
| secrets section data with 50 secrets (\`secrets_panel\` server function, 10 connections, 20 s) | ≤ 30 ms | $panel |
| whole entity page with the 50-secret section, SSR (10 connections, 20 s; $bytes bytes) | ≤ 30 ms for the section | $entity |
MD
cat bench/secrets-results.md
