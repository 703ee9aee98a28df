#!/usr/bin/env bash
# Regenerates the committed sqlx offline query data (.sqlx/) after a query or
# migration changes. Each backend's queries are checked against its own
# schema: core's against a scratch SQLite database built from migrations/,
# paved-pg's against a throwaway PostgreSQL cluster migrated from
# migrations/postgres/. sqlx reads DATABASE_URL per crate from a `.env` beside
# its Cargo.toml (the files are removed after).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
db="$CARGO_TARGET_DIR/sqlx-prepare.db"
mkdir -p "$CARGO_TARGET_DIR"
rm -f "$db"
python3 - "$db" migrations/*.sql <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for path in sorted(sys.argv[2:]):
    con.executescript(open(path).read())
con.close()
PY
start_postgres "${PG_PREPARE_PORT:-55499}"
trap 'stop_postgres; rm -f core/.env pg/.env store/.env' EXIT
for f in migrations/postgres/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$PAVED_TEST_POSTGRES_URL" -f "$f" > /dev/null
done
# paved-store writes each statement for both backends (`dual!`): it is
# compiled once per backend, with only that backend's arms (a cfg), against
# that backend's database. Everything else: core SQLite, paved-pg PostgreSQL.
rm -rf .sqlx && mkdir .sqlx
echo "DATABASE_URL=$PAVED_TEST_POSTGRES_URL" > pg/.env
echo "DATABASE_URL=sqlite://$db" > core/.env
echo "DATABASE_URL=sqlite://$db" > store/.env
touch core/src/lib.rs pg/src/lib.rs store/src/lib.rs
env -u DATABASE_URL SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$ROOT/.sqlx" RUSTFLAGS='--cfg erase_components --cfg paved_sqlx_only="sqlite"' \
  cargo check --workspace --all-targets --quiet
echo "DATABASE_URL=$PAVED_TEST_POSTGRES_URL" > store/.env
touch store/src/lib.rs
env -u DATABASE_URL SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$ROOT/.sqlx" RUSTFLAGS='--cfg erase_components --cfg paved_sqlx_only="postgres"' \
  cargo check -p paved-store --all-targets --quiet
log "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
