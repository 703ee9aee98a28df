# Shared by Paved's scripts: paths and small helpers. Source it, don't run it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Compiled dependencies persist across runs and fresh clones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paved/target}"
export LEPTOS_OUTPUT_NAME=paved
# CI builds once per run: incremental data would only fill the cache (it reached 35 GB here).
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
# Paved's own build tools (tools/) install to ~/.cache/paved/tools; pip's --user scripts (OpenBao's `bao`) may live outside PATH on a fresh machine.
export PATH="$HOME/.cargo/bin:$HOME/.cache/paved/tools/bin:$ROOT/node_modules/.bin:$PATH:$HOME/.local/bin"
SITE_ROOT="$ROOT/target/site"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Waits until `url` answers (any HTTP status), up to `seconds`.
wait_for_http() {
  local url=$1 seconds=${2:-60} i=0
  until curl -s -o /dev/null "$url"; do
    i=$((i + 1))
    [ "$i" -ge $((seconds * 5)) ] && return 1
    sleep 0.2
  done
}

# Waits until `url` answers 200, up to `seconds`.
wait_for_ok() {
  local url=$1 seconds=${2:-60} i=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; do
    i=$((i + 1))
    [ "$i" -ge $((seconds * 5)) ] && return 1
    sleep 0.2
  done
}

# start_stack DIR PARTS...: what runs around Paved, on loopback, for the demo,
# the browser tests and every benchmark; logs (and OpenBao's audit log) go to DIR.
# PARTS name what to start:
#   oidc   the demo OpenID provider on $OIDC_PORT (skipped when PAVED_OIDC_ISSUER
#          is already set); needs PAVED_PUBLIC_URL for its redirect.
#   vault  an OpenBao dev server on $VAULT_PORT, root token $VAULT_TOKEN (skipped
#          when PAVED_VAULT_ADDR is set); Paved gets the least-privilege token
#          from vault-dev-setup.sh, never the root token.
#   kube   a Kubernetes API stand-in (kube-stub) on $KUBE_PORT holding demo/kube,
#          its admission chain Paved's own webhook, as the cluster `prod-eu`
#          (skipped when PAVED_KUBE_CLUSTERS is set); writes DIR/clusters.yaml.
#   llm    the stub LLM provider on $LLM_PORT (skipped when PAVED_LLM_UPSTREAMS is
#          set); with OpenBao it requires key $LLM_KEY, stored where Paved reads
#          it, and OpenAI's model names are routed to it.
# Exports the PAVED_* variables that point Paved at what started, sets
# STARTED_OIDC/STARTED_VAULT/STARTED_KUBE/STARTED_LLM and LLM_STUB_URL, appends pids to `pids`
# and stops everything on exit.
start_stack() {
  local dir=$1 part
  shift
  mkdir -p "$dir"
  pids=()
  trap stop_stack EXIT
  for part in "$@"; do
    case $part in
      oidc)
        [ -n "${PAVED_OIDC_ISSUER:-}" ] && continue
        export PAVED_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT"
        export PAVED_OIDC_CLIENT_ID="${PAVED_OIDC_CLIENT_ID:-paved}"
        export PAVED_OIDC_CLIENT_SECRET="${PAVED_OIDC_CLIENT_SECRET:-paved-demo-secret}"
        log "starting the demo OpenID provider at $PAVED_OIDC_ISSUER"
        OIDC_PORT=$OIDC_PORT node "$ROOT/end2end/oidc/provider.mjs" > "$dir/oidc.log" 2>&1 &
        pids+=($!)
        wait_for_http "$PAVED_OIDC_ISSUER/.well-known/openid-configuration" 30 \
          || die "the OpenID provider did not start; see $dir/oidc.log"
        STARTED_OIDC=1
        ;;
      vault)
        [ -n "${PAVED_VAULT_ADDR:-}" ] && continue
        export VAULT_ADDR="http://127.0.0.1:$VAULT_PORT" VAULT_TOKEN="${VAULT_TOKEN:-paved-dev-root}"
        # OpenBao only accepts audit devices declared in its configuration file.
        printf 'audit "file" "paved" {\n  options { file_path = "%s" }\n}\n' "$dir/openbao-audit.log" > "$dir/openbao.hcl"
        log "starting the OpenBao dev server at $VAULT_ADDR"
        bao server -dev -dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:$VAULT_PORT" \
          -config="$dir/openbao.hcl" > "$dir/openbao.log" 2>&1 &
        pids+=($!)
        wait_for_ok "$VAULT_ADDR/v1/sys/health" 30 || die "OpenBao did not start; see $dir/openbao.log"
        export PAVED_VAULT_ADDR="$VAULT_ADDR"
        PAVED_VAULT_TOKEN="$("$ROOT/scripts/vault-dev-setup.sh")"
        export PAVED_VAULT_TOKEN
        STARTED_VAULT=1
        ;;
      kube)
        [ -n "${PAVED_KUBE_CLUSTERS:-}" ] && continue
        log "starting the Kubernetes API stand-in at http://127.0.0.1:$KUBE_PORT (cluster prod-eu)"
        "$CARGO_TARGET_DIR/${PAVED_PROFILE_DIR:-debug}/kube-stub" --addr "127.0.0.1:$KUBE_PORT" \
          --fixtures "$ROOT/demo/kube" --logs "$ROOT/demo/kube/logs" --write-kubeconfig "$dir/kube-stub.kubeconfig" \
          --admission-webhook "$PAVED_PUBLIC_URL/api/admission/v1/validate" > "$dir/kube-stub.log" 2>&1 &
        pids+=($!)
        wait_for_ok "http://127.0.0.1:$KUBE_PORT/version" 30 || die "the Kubernetes stand-in did not start; see $dir/kube-stub.log"
        printf 'clusters:\n  - name: prod-eu\n    kubeconfig: kube-stub.kubeconfig\n    production: true\n' > "$dir/clusters.yaml"
        export PAVED_KUBE_CLUSTERS="$dir/clusters.yaml"
        STARTED_KUBE=1
        ;;
      llm)
        [ -n "${PAVED_LLM_UPSTREAMS:-}" ] && continue
        log "starting the stub LLM provider at http://127.0.0.1:$LLM_PORT/v1"
        start_llm_stub "$LLM_PORT" "${STARTED_VAULT:+$LLM_KEY}" "$dir/llm-upstreams.yaml"
        export PAVED_LLM_UPSTREAMS="$dir/llm-upstreams.yaml"
        STARTED_LLM=1
        ;;
      *) die "start_stack: unknown part $part" ;;
    esac
  done
}

stop_stack() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

# start_postgres PORT: a throwaway PostgreSQL cluster (Debian's `postgresql`)
# on 127.0.0.1:PORT, trusting local connections, fsync off (tests only), its
# files in a new folder under /tmp; with PG_DURABLE=1, fsync and synchronous
# commits stay on (benchmarks). PostgreSQL refuses to run as root, so as
# root the cluster belongs to the `postgres` user the package created.
# Exports PAVED_TEST_POSTGRES_URL (a superuser `paved`, database `postgres`)
# and PG_DATA; stop_postgres stops it and removes the folder.
start_postgres() {
  local port=$1 bin run=() speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${PG_DURABLE:-}" = 1 ] && speed="-c track_functions=pl"
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || die "PostgreSQL is not installed (Debian package postgresql)"
  PG_DATA=$(mktemp -d /tmp/paved-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DATA"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$PG_DATA/data" -U paved -A trust --no-sync -E UTF8 --locale=C.UTF-8 \
    > "$PG_DATA/initdb.log" 2>&1 || { cat "$PG_DATA/initdb.log" >&2; die "initdb failed"; }
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DATA/data" -l "$PG_DATA/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DATA $speed -c max_connections=300" \
    start > /dev/null || { cat "$PG_DATA/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_BIN=$bin
  export PG_DATA PAVED_TEST_POSTGRES_URL="postgres://paved@127.0.0.1:$port/postgres"
}

stop_postgres() {
  [ -n "${PG_DATA:-}" ] || return 0
  local run=()
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA/data" -m fast -w stop > /dev/null 2>&1 || true
  rm -rf "$PG_DATA"
  PG_DATA=
}

# run_paved LOG [BIN]: runs Paved (the debug build unless BIN) with the
# exported PAVED_* variables, logging to LOG ("-": this terminal), and waits
# until it is ready; its pid is `paved_pid` and is appended to `pids`.
run_paved() {
  local log_file=$1 bin=${2:-$CARGO_TARGET_DIR/${PAVED_PROFILE_DIR:-debug}/paved}
  if [ "$log_file" = - ]; then "$bin" & else "$bin" > "$log_file" 2>&1 & fi
  paved_pid=$!
  pids+=("$paved_pid")
  wait_for_ok "$PAVED_PUBLIC_URL/readyz" 60 || {
    [ "$log_file" = - ] || tail -n 40 "$log_file" >&2
    die "Paved did not start"
  }
}

# The local stub that stands in for LLM providers (OpenAI's and Anthropic's
# APIs) in the demo, the browser tests and the benchmarks (no provider is
# reachable from here): starts it on port $1, writes a PAVED_LLM_UPSTREAMS file
# $3 routing OpenAI's model names and claude-sonnet-4-5 (through Anthropic's
# Messages API) to it, plus team-chat, a model with two weighted deployments
# and a fallback to claude-sonnet-4-5, and sets LLM_STUB_URL. With an API key
# $2 the stub requires it and the key is stored as the platform-wide
# credential at secret/platform/llm/_platform, in both fields `openai` and
# `anthropic` (needs VAULT_ADDR and a VAULT_TOKEN that may write there).
# Appends the stub's pid to `pids`.
start_llm_stub() {
  local port=$1 key=$2 file=$3 credential=""
  local args=(--port "$port")
  if [ -n "$key" ]; then
    args+=(--require-key "$key")
    credential="credential: llm/_platform, "
  fi
  "$CARGO_TARGET_DIR/${PAVED_PROFILE_DIR:-debug}/paved-llm-stub" "${args[@]}" > "${file%.yaml}.log" 2>&1 &
  pids+=($!)
  LLM_STUB_URL="http://127.0.0.1:$port"
  cat > "$file" <<YAML
# Generated by scripts/lib.sh: every model goes to the local stub provider.
models:
  - { model: gpt-4o-mini, provider: openai, base_url: "$LLM_STUB_URL/v1", ${credential}max_output_tokens: 16384 }
  - { model: gpt-4o, provider: openai, base_url: "$LLM_STUB_URL/v1", ${credential}max_output_tokens: 16384 }
  - { model: text-embedding-3-small, provider: openai, base_url: "$LLM_STUB_URL/v1", ${credential}type: embeddings }
  # Anthropic's Messages API (the gateway calls {base_url}/v1/messages).
  - { model: claude-sonnet-4-5, provider: anthropic, api: anthropic, base_url: "$LLM_STUB_URL", ${credential}max_output_tokens: 8192 }
  # Routing: three requests in four go to primary, and when both fail the
  # request falls back to claude-sonnet-4-5 (push {"status":500} twice to
  # the stub's /_stub/push to see it).
  - model: team-chat
    max_output_tokens: 16384
    deployments:
      - { name: primary, provider: openai, base_url: "$LLM_STUB_URL/v1", ${credential}upstream_model: gpt-4o-mini, weight: 3 }
      - { name: secondary, provider: openai, base_url: "$LLM_STUB_URL/v1", ${credential}upstream_model: gpt-4o-mini, weight: 1 }
    fallbacks: [claude-sonnet-4-5]
YAML
  wait_for_http "$LLM_STUB_URL/v1/models" 30 || die "the LLM stub did not start; see ${file%.yaml}.log"
  if [ -n "$key" ]; then
    # One secret, one field per provider (a deployment's credential_key
    # defaults to its provider); writing it again replaces it whole.
    curl -sf -X POST -H "X-Vault-Token: $VAULT_TOKEN" -d "{\"data\":{\"openai\":\"$key\",\"anthropic\":\"$key\"}}" \
      "$VAULT_ADDR/v1/secret/data/platform/llm/_platform" > /dev/null || die "cannot store the stub provider key in Vault"
  fi
}

# bench_sign_in USER OIDC_PORT JAR: signs USER (password USER-demo, the demo
# provider's) in to Paved at $PAVED_PUBLIC_URL through the provider's form
# and prints the session cookie's value.
bench_sign_in() {
  local who=$1 port=$2 jar=$3 form action cookie
  form=$(curl -s -L -c "$jar" -b "$jar" "$PAVED_PUBLIC_URL/auth/login")
  action=$(echo "$form" | grep -o 'action="[^"]*"' | head -1 | sed 's/action="//; s/"$//')
  curl -s -L -c "$jar" -b "$jar" -o /dev/null -d username="$who" -d password="$who-demo" "http://127.0.0.1:$port$action"
  cookie=$(awk '$6 == "paved_session" { print $7 }' "$jar")
  [ -n "$cookie" ] || die "sign-in of $who for the benchmark failed"
  echo "$cookie"
}
