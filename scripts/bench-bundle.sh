#!/usr/bin/env bash
# Browser bundle per page: what Chromium downloads of wasm and js on a first
# visit to the home, catalog, entity, wizard, budget and task pages (as gzip
# and as sent). Runs the browser stack of scripts/test.sh with only
# end2end/tests/bundle.spec.ts, which writes bench/bundle-results.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PAVED_BUNDLE_REPORT="$ROOT/bench/bundle-results.md" PAVED_E2E_ONLY=bundle exec "$ROOT/scripts/test.sh"
