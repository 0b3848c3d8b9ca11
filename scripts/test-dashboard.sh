#!/usr/bin/env bash
# The dashboard end to end in headless Chromium (docs/dashboard.md): a real fenlei-server process
# with the sample city and simulated phones, users with dashboard passwords, then
# tests/dashboard/dashboard.test.mjs drives Debian's chromium through playwright-core.
# Screenshots are kept in $CARGO_TARGET_DIR/dashboard-screenshots (default target/...).
# Usage: scripts/test-dashboard.sh     (scripts/test.sh runs it as its own block)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
bootstrap_dashboard_tools
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --workspace --locked -q --bins
BIN="$target_dir/debug/fenlei-server"
DATA="$target_dir/dashboard-e2e"
SHOTS="$target_dir/dashboard-screenshots"
rm -rf "$DATA" "$SHOTS"
mkdir -p "$SHOTS"
"$BIN" --data "$DATA" init --sample >/dev/null
# No --insecure-cookies: the session cookie is Secure as in production, and Chromium keeps it on
# http://127.0.0.1 (a secure context).
"$BIN" --data "$DATA" serve --addr 127.0.0.1:0 --port-file "$DATA/port" >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -s "$DATA/port" ] && break; sleep 0.1; done
[ -s "$DATA/port" ] || { echo "server did not start" >&2; cat "$DATA/server.log" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$DATA/port")"
"$BIN" --data "$DATA" simulate --url "$URL" --inspectors 3 --inspections 8 --weeks 6 >"$DATA/simulate.log"

# Passwords go through the environment, never argv. These are test-only credentials.
SUP_PASSWORD="e2e-supervisor-$RANDOM$RANDOM"
FENLEI_PASSWORD="$SUP_PASSWORD" "$BIN" --data "$DATA" set-password sup.wang >/dev/null
# A user for the lockout test, so the main supervisor is never locked.
"$BIN" --data "$DATA" add-user --id lock.test --name 锁定测试 --role supervisor >/dev/null
FENLEI_PASSWORD="lock-test-password" "$BIN" --data "$DATA" set-password lock.test >/dev/null
# A supervisor who became an inspector keeps a password but may no longer sign in.
"$BIN" --data "$DATA" add-user --id former.sup --name 原督导 --role supervisor >/dev/null
FENLEI_PASSWORD="former-sup-password" "$BIN" --data "$DATA" set-password former.sup >/dev/null
"$BIN" --data "$DATA" add-user --id former.sup --name 原督导 --role inspector >/dev/null

cd tests/dashboard
FENLEI_URL="$URL" FENLEI_SUP_USER=sup.wang FENLEI_SUP_PASSWORD="$SUP_PASSWORD" \
  FENLEI_SCREENSHOTS="$SHOTS" FENLEI_BIN="$BIN" FENLEI_DATA="$DATA" CHROMIUM="$(command -v chromium)" \
  node --test --test-reporter=spec dashboard.test.mjs
echo "dashboard screenshots: $SHOTS"
