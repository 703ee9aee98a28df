#!/usr/bin/env bash
# Regenerates the committed sqlx offline query data (.sqlx/) after a query or
# migration changes: builds a scratch database from migrations/, then
# re-checks every crate with compile-time queries against it.
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
rm -rf .sqlx && mkdir .sqlx
touch core/src/lib.rs
DATABASE_URL="sqlite://$db" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$ROOT/.sqlx" \
  cargo check --workspace --all-targets --quiet
log "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
