#!/usr/bin/env bash
# Soak test with a crash in the middle (issue 20): a release Paved on a
# 13,200-entity catalog (bench/catalog_gen.py) with OpenBao, the OpenID
# provider and the stub LLM provider, under 30 minutes of mixed load from
# bench/soak.py (catalog lists and searches, entity pages, gateway chat with a
# budget, scaffolds, secret writes). Half-way through, Paved is killed with
# SIGKILL and started again. Results: bench/soak-results.md, the raw figures
# bench/soak-results.json and the timeline chart bench/soak-timeline.svg.
#   SOAK_MINUTES (30) shortens or lengthens the run; BENCH_NO_BUILD=1 reuses
#   the last release build.
# Exits non-zero when a crash check fails (a hold lost or counted twice, a
# scaffolder task left unfinished, a catalog location half-applied).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
minutes=${SOAK_MINUTES:-30}

"$ROOT/scripts/setup.sh" demo
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"
if [ "${BENCH_NO_BUILD:-}" = 1 ]; then
  log "BENCH_NO_BUILD=1: using the release binaries already built"
  commit="$commit (binaries from an earlier build)"
else
  "$ROOT/scripts/build.sh" --release
  cargo build --locked -p paved-llm-stub --profile release --bins
fi
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d)
port=3360 url="http://127.0.0.1:3360"
export OIDC_PORT=4460 VAULT_PORT=8260 VAULT_TOKEN=paved-soak-root LLM_PORT=9460 LLM_KEY=sk-paved-soak-provider-key
export PAVED_PUBLIC_URL="$url"
PAVED_PROFILE_DIR=release start_stack "$work" oidc vault llm
trap 'kill "$(cat "$work/paved.pid" 2>/dev/null)" 2>/dev/null || true; stop_stack; rm -rf "$work"' EXIT

log "generating the 13k-entity catalog"
python3 bench/catalog_gen.py "$work/synth" 1
admin_token=soak-admin-0123456789abcdef
lead_token=soak-lead-0123456789abcdef
# Everything Paved needs, in a script soak.py runs again after the kill.
cat > "$work/start-paved.sh" <<SH
export PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$url" PAVED_DEMO=true PAVED_LOG=warn
export PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT"
export PAVED_OIDC_ISSUER="$PAVED_OIDC_ISSUER" PAVED_OIDC_CLIENT_ID="$PAVED_OIDC_CLIENT_ID" PAVED_OIDC_CLIENT_SECRET="$PAVED_OIDC_CLIENT_SECRET"
export PAVED_VAULT_ADDR="$PAVED_VAULT_ADDR" PAVED_VAULT_TOKEN="$PAVED_VAULT_TOKEN" PAVED_LLM_UPSTREAMS="$PAVED_LLM_UPSTREAMS"
export PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog,$ROOT/templates,$work/synth"
export PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml"
export PAVED_SCAFFOLDER_GIT_HOSTS="git.paved.demo=file://$work/git" PAVED_SCAFFOLDER_WORKDIR="$work/scaffolder"
export PAVED_SERVICE_TOKENS="soak:$admin_token:platform_admin,lead:$lead_token:team_lead:payments"
# Holds of requests in flight at the kill are released after a minute.
export PAVED_LLM_RESERVATION_TTL_SECS=60
"$bin/paved" >> "$work/paved.log" 2>&1 &
echo \$! > "$work/paved.pid"
SH
bash "$work/start-paved.sh"
wait_for_ok "$url/readyz" 60 || { tail -n 40 "$work/paved.log" >&2; die "Paved did not start"; }

api() {
  local method=$1 path=$2 token=$3 data=$4 want=$5 code
  code=$(curl -s -o "$work/api.out" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$data" "$url$path")
  [ "$code" = "$want" ] || die "$method $path answered $code: $(cat "$work/api.out")"
}
log "registering the catalog"
api POST /api/catalog/locations "$admin_token" "{\"type\":\"file\",\"target\":\"$work/synth/all.yaml\"}" 201
api PUT /api/budgets/v1/teams/payments "$lead_token" '{"period":"monthly","limit_cents":100000000}' 200
api POST /api/budgets/v1/teams/payments/keys "$lead_token" '{"name":"soak"}' 201
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$work/api.out")
cookie=$(bench_sign_in dana "$OIDC_PORT" "$work/cookies")

log "soaking for $minutes minutes (kill -9 at the half)"
status=0
python3 bench/soak.py "$url" "$work/paved.pid" "$work/start-paved.sh" "$work/paved.db" \
  "$admin_token" "$lead_token" "$key" "$cookie" "$minutes" bench/soak-results.json bench/soak-timeline.svg \
  > "$work/soak.out" || status=$?
cat "$work/soak.out"

python3 - "$minutes" "$commit" "$(date -u +%Y-%m-%d)" "$(nproc)" <<'PY' > bench/soak-results.md
import json, sys
minutes, commit, day, cores = sys.argv[1:5]
r = json.load(open("bench/soak-results.json"))
print("# Soak results\n")
print(f"`./scripts/bench-soak.sh` (SOAK_MINUTES={minutes}), commit {commit}, {day}, {cores} cores, release build; "
      "the load generator, OpenBao, the OpenID provider and the stub LLM provider run on the same machine. "
      f"Paved was killed with SIGKILL at minute {r['kill_at_s'] / 60:g} and was ready again after {r['restart_s']} s.\n")
print("![timeline](soak-timeline.svg)\n")
print("## Requests\n\n| operation | answered 2xx | failed | failed while Paved was down |\n|---|---|---|---|")
for op, c in r["requests"].items():
    print(f"| {op} | {c['ok']} | {c['failed']} | {c['failed_during_restart']} |")
print("\n## Steady state (minutes 3 onwards after each start)\n\n| measure | min | median | max | max over median |\n|---|---|---|---|---|")
for key, s in r["steady_state"].items():
    if s:
        print(f"| {key} | {s['min']} | {s['median']} | {s['max']} | {s['max_over_median_pct']}% |")
print("\n## After the crash\n")
for name, c in r["checks"].items():
    verdict = "pass" if c["pass"] else "FAIL"
    details = "; ".join(f"{k}: {v}" for k, v in c.items() if k != "pass")
    print(f"- **{name}: {verdict}** ({details})")
PY
cat bench/soak-results.md
exit $status
