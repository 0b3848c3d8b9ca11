#!/usr/bin/env bash
# The main job: start the Fenlei server with the sample city (one SQLite file in the data folder),
# run simulated devices built from the core library (inspectors record and sync sample
# inspections with a photo each, uploaded through media sync; a supervisor approves or returns
# them), print a supervisor token, curl-able URLs (one fetches a photo's thumbnail)
# and this week's rankings. The server keeps running until Ctrl-C (FENLEI_RUN_ONCE=1: stop at once).
# Usage: scripts/run.sh [data folder]   (default: target/run, recreated each run)
# Env: FENLEI_PORT (default 8080), FENLEI_INSPECTORS (3), FENLEI_INSPECTIONS per inspector (6).
# The offline demo of the core alone is still there: cargo run --example demo -p fenlei-core
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

DATA="${1:-target/run}"
PORT="${FENLEI_PORT:-8080}"
cargo build --release --locked -q -p fenlei-server
BIN="${CARGO_TARGET_DIR:-target}/release/fenlei-server"
rm -rf "$DATA"
"$BIN" --data "$DATA" init --sample
"$BIN" --data "$DATA" serve --addr "127.0.0.1:$PORT" --port-file "$DATA/port" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$DATA/port" ] && break; sleep 0.1; done
[ -s "$DATA/port" ] || { echo "server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$DATA/port")"
"$BIN" --data "$DATA" simulate --url "$URL" \
    --inspectors "${FENLEI_INSPECTORS:-3}" --inspections "${FENLEI_INSPECTIONS:-6}"
if [ "${FENLEI_RUN_ONCE:-0}" != "1" ]; then
    echo "Server running at $URL — Ctrl-C to stop."
    wait $SERVER
fi
