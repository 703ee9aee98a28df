#!/usr/bin/env bash
# Scaffolder benchmarks (release build, local OpenBao dev server, bare git
# repositories in a scratch folder). Not a test: numbers go to
# bench/scaffolder-results.md and the README.
#   - dry run of the Rust golden path (30 runs)
#   - full scaffold of it: render, git publish, catalog register, Vault provision, notify (30 runs, one at a time)
#   - 20 scaffolds started at once: all must complete
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" demo
"$ROOT/scripts/build.sh" --release

start_bench_stack 3340 4440 8240

token=bench-token-0123456789abcdef
PAVED_BIND="127.0.0.1:$port" PAVED_PUBLIC_URL="$url" PAVED_DEMO=true PAVED_LOG=warn \
PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
PAVED_OIDC_ISSUER="http://127.0.0.1:$oidc_port" PAVED_OIDC_CLIENT_ID=paved PAVED_OIDC_CLIENT_SECRET=paved-demo-secret \
PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog,$ROOT/templates" \
PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml" \
PAVED_SCAFFOLDER_GIT_HOSTS="git.paved.demo=file://$work/git" PAVED_SCAFFOLDER_WORKDIR="$work/scaffolder" \
PAVED_SERVICE_TOKENS="bench:$token:team_lead:payments" \
PAVED_VAULT_ADDR="$VAULT_ADDR" PAVED_VAULT_TOKEN="$portal_token" \
  "$CARGO_TARGET_DIR/release/paved" > "$work/paved.log" 2>&1 &
pids+=($!)
wait_for_ok "$url/readyz" 60

result=$(python3 bench/scaffold_bench.py "$url" "$token" template:default/rust-axum-service 30 20)
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))" "$result" "$1"; }
cat > bench/scaffolder-results.md <<MD
# Scaffolder benchmark results

\`./scripts/bench-scaffolder.sh\`, release build, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m); OpenBao $(bao version | awk '{print $2}') dev server, bare git repositories on local disk; the load generator (\`bench/scaffold_bench.py\`) runs on the same machine. Template: the Rust Axum golden path (render $(field dry_run_files) files, publish:git, catalog:register, vault:provision, notification:send).

| what | goal | measured |
|---|---|---|
| dry run, 30 runs | ≤ 200 ms | p50 $(field "dry_run_ms['p50']") ms, p95 $(field "dry_run_ms['p95']") ms |
| full scaffold, 30 runs one at a time (request to completed, client side, 10 ms polling) | p95 ≤ 2 s | p50 $(field "scaffold_ms['p50']") ms, p95 $(field "scaffold_ms['p95']") ms |
| 20 scaffolds started at once | all finish correctly | $(field "burst['completed']") of 20 completed in $(field "burst['wall_ms']") ms |

Raw: \`$result\`
MD
cat bench/scaffolder-results.md
