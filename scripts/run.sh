#!/usr/bin/env bash
# The main job: start the Fenlei server with the sample city (one SQLite file in the data folder),
# run simulated devices built from the core library (inspectors record and sync sample
# inspections with a photo each, uploaded through media sync; a supervisor approves or returns
# them), print a supervisor token, curl-able URLs (one fetches a photo's thumbnail), this week's
# rankings, then the supervisors' web dashboard URL with a demo sign-in. The server keeps running
# until Ctrl-C (FENLEI_RUN_ONCE=1: stop at once).
# Usage: scripts/run.sh [--postgres] [data folder]   (default: target/run, recreated each run)
#   --postgres: the same job on a throwaway PostgreSQL cluster (scripts/postgres.sh, in
#   <data folder>-pg, stopped on exit) with TWO server instances on one database and one blob
#   folder, FENLEI_PORT and FENLEI_PORT+1; the simulated inspectors sync through both (alternating)
#   and the supervisor through the second (docs/deploy.md). Default: one server on SQLite.
# Env: FENLEI_PORT (default 8080), FENLEI_INSPECTORS (3), FENLEI_INSPECTIONS per inspector (8),
#      FENLEI_WEEKS the inspections are spread over (4; 0 = all now),
#      FENLEI_DEMO_PASSWORD the demo supervisor's dashboard password (default below; demo only).
# The offline demo of the core alone is still there: cargo run --example demo -p fenlei-core
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

POSTGRES=0
if [ "${1:-}" = "--postgres" ]; then POSTGRES=1; shift; fi
DATA="${1:-target/run}"
PORT="${FENLEI_PORT:-8080}"
cargo build --release --locked -q -p fenlei-server
BIN="${CARGO_TARGET_DIR:-target}/release/fenlei-server"
rm -rf "$DATA"
SERVERS=()
PGDIR=""
cleanup() {
    for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVERS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$PGDIR" ]; then bash scripts/postgres.sh stop "$PGDIR"; fi
}
trap cleanup EXIT
INSTANCES=1
if [ "$POSTGRES" = 1 ]; then
    PGDIR="$DATA-pg"
    rm -rf "$PGDIR"
    CLUSTER=$(bash scripts/postgres.sh start "$PGDIR" | tail -1)
    export FENLEI_DATABASE_URL
    FENLEI_DATABASE_URL=$(bash scripts/postgres.sh createdb "$CLUSTER" fenlei_run)
    echo "PostgreSQL: $FENLEI_DATABASE_URL (cluster in $PGDIR)"
    INSTANCES=2
else
    unset FENLEI_DATABASE_URL
fi
"$BIN" --data "$DATA" init --sample
URLS=()
for n in $(seq 0 $((INSTANCES - 1))); do
    # Plain HTTP on loopback for the demo: the session cookie without Secure, so any browser
    # keeps it (a real deployment serves through TLS and never sets this).
    "$BIN" --data "$DATA" serve --addr "127.0.0.1:$((PORT + n))" --port-file "$DATA/port.$n" \
        --insecure-cookies &
    SERVERS+=($!)
    for _ in $(seq 100); do [ -s "$DATA/port.$n" ] && break; sleep 0.1; done
    [ -s "$DATA/port.$n" ] || { echo "server $n did not start" >&2; exit 1; }
    URLS+=("http://127.0.0.1:$(cat "$DATA/port.$n")")
done
URL="${URLS[0]}"
ALL_URLS=$(IFS=,; echo "${URLS[*]}")
if [ "$INSTANCES" -gt 1 ]; then echo "Server instances on one database: ${URLS[*]}"; fi
"$BIN" --data "$DATA" simulate --url "$ALL_URLS" \
    --inspectors "${FENLEI_INSPECTORS:-3}" --inspections "${FENLEI_INSPECTIONS:-8}" \
    --weeks "${FENLEI_WEEKS:-4}"
# A DEMO credential for the sample city's supervisor (sim.rs creates sup.wang): a fixed, published
# password that is fine for a throw-away data folder on loopback and nowhere else. Real accounts get
# theirs with `fenlei-server set-password USER` (password on stdin or in FENLEI_PASSWORD).
DEMO_PASSWORD="${FENLEI_DEMO_PASSWORD:-fenlei-demo-2026}"
FENLEI_PASSWORD="$DEMO_PASSWORD" "$BIN" --data "$DATA" set-password sup.wang >/dev/null
echo "Dashboard: $URL/dashboard/"
echo "  demo sign-in (demo credential for this sample data only): user sup.wang, password $DEMO_PASSWORD"
if [ "${FENLEI_RUN_ONCE:-0}" != "1" ]; then
    echo "Server running at ${URLS[*]} — Ctrl-C to stop."
    wait "${SERVERS[@]}"
fi
