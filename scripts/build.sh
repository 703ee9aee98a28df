#!/usr/bin/env bash
# Builds Paved without cargo-leptos (see ARCHITECTURE.md, "Build"):
#   1. the browser bundle: `app` for wasm32 with `hydrate`, wasm-bindgen, wasm-opt (npm binaryen)
#   2. the stylesheet: Tailwind CSS v4 CLI
#   3. the server: `paved`, debug by default, `--release` for benchmarks
# Output: target/site/pkg/{paved.js,paved.wasm,paved.css, the lazy islands' chunk_N.wasm, each also .gz and .br}, the `paved` binary, `paved-llm-stub`, `paved-githost-stub` and `kube-stub`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

server_profile=dev
[ "${1:-}" = "--release" ] && server_profile=release

mkdir -p "$SITE_ROOT/pkg"
log "building the browser bundle (wasm32, hydrate)"
cargo build --locked -p app --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate --profile wasm-release
# Split at the lazy islands (tools/wasm-split): the main module keeps what every
# page needs, each island's code becomes chunks fetched only where it is shown.
rm -f "$SITE_ROOT"/pkg/chunk_*.wasm "$SITE_ROOT"/pkg/split_*.wasm "$SITE_ROOT"/pkg/__wasm_split*
paved-wasm-split "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/app.wasm" \
  "$SITE_ROOT/pkg" "$CARGO_TARGET_DIR/paved_split.wasm" paved
wasm-bindgen --target web --no-typescript --keep-lld-exports --no-demangle \
  --out-dir "$SITE_ROOT/pkg" --out-name paved "$CARGO_TARGET_DIR/paved_split.wasm"
# Leptos loads `<output-name>.wasm` when LEPTOS_OUTPUT_NAME is set at compile time (as cargo-leptos names it).
mv -f "$SITE_ROOT/pkg/paved_bg.wasm" "$SITE_ROOT/pkg/paved.wasm"
log "optimising the bundle (wasm-opt from npm binaryen)"
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types \
  --enable-multivalue --enable-sign-ext --enable-mutable-globals \
  "$SITE_ROOT/pkg/paved.wasm" -o "$SITE_ROOT/pkg/paved.wasm"

log "building the stylesheet (Tailwind CSS v4)"
tailwindcss -i style/tailwind.css -o "$SITE_ROOT/pkg/paved.css" --minify 2>/dev/null
cp -r public/. "$SITE_ROOT/"
# The chunks through binaryen, then a gzip and a brotli copy of every asset.
node scripts/optimize-bundle.mjs "$SITE_ROOT/pkg"

log "building the server ($server_profile)"
# The local stand-ins (an OpenAI-compatible provider, GitHub's REST API) come
# along for the demo, the browser tests and the benchmarks.
cargo build --locked -p paved -p paved-llm-stub -p paved-githost-stub -p paved-kube-stub --profile "$server_profile"
