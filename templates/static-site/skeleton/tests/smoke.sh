#!/bin/sh
# Smoke test of the running site: every page answers, unknown paths are 404,
# security headers are set. Usage: tests/smoke.sh [BASE_URL]
set -eu
BASE_URL="${1:-http://localhost:8080}"
failures=0

check() { # path expected_status
    status=$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL$1")
    if [ "$status" = "$2" ]; then
        echo "ok   $1 -> $status"
    else
        echo "FAIL $1 -> $status (expected $2)"
        failures=$((failures + 1))
    fi
}

check /healthz 200
check / 200
check /docs/ 200
check /styles.css 200
check /no-such-page 404

# Every HTML file under public/ is served.
for page in $(cd public && find . -name '*.html' ! -name '404.html' | sed 's|^\.||'); do
    check "$page" 200
done

if curl -sI "$BASE_URL/" | grep -qi '^x-content-type-options: nosniff'; then
    echo "ok   security headers"
else
    echo "FAIL security headers missing"
    failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
