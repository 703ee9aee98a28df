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

work=$(mktemp -d)
port=3340 url="http://127.0.0.1:3340"
export OIDC_PORT=4440 VAULT_PORT=8240 VAULT_TOKEN=paved-bench-root PAVED_PUBLIC_URL="$url"
start_stack "$work" oidc vault
trap 'stop_stack; rm -rf "$work"' EXIT
oidc_port=$OIDC_PORT

token=bench-token-0123456789abcdef
export PAVED_BIND="127.0.0.1:$port" PAVED_DEMO=true PAVED_LOG=warn \
PAVED_DATABASE_URL="sqlite://$work/paved.db" PAVED_SITE_ROOT="$SITE_ROOT" \
PAVED_CATALOG_FILE_ROOTS="$ROOT/catalog,$ROOT/templates" \
PAVED_CATALOG_LOCATIONS="file:$ROOT/catalog/demo/all.yaml,file:$ROOT/templates/all.yaml" \
PAVED_SCAFFOLDER_GIT_HOSTS="git.paved.demo=file://$work/git" PAVED_SCAFFOLDER_WORKDIR="$work/scaffolder" \
PAVED_SERVICE_TOKENS="bench:$token:team_lead:payments"
run_paved "$work/paved.log" "$CARGO_TARGET_DIR/release/paved"

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
