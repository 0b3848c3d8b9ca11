#!/usr/bin/env bash
# The long reliability runs behind the figures in docs/reliability.md (CI runs short versions of
# the same tests through scripts/test.sh).
#   scripts/reliability.sh kill    1,000 SIGKILLs of a recording process (FENLEI_KILLS to change)
#   scripts/reliability.sh proxy   100 random three-device schedules through the fault proxy
#                                  (FENLEI_PROPTEST_CASES to change)
#   scripts/reliability.sh fuzz    every fuzz target for FENLEI_FUZZ_SECONDS each (default 600)
#   scripts/reliability.sh hostile 10,000 random hostile requests against a real server
#                                  (FENLEI_HOSTILE_CASES, FENLEI_HOSTILE_SEED to change)
#   scripts/reliability.sh all     all four
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
what=${1:-all}

run_kill() {
  FENLEI_KILLS=${FENLEI_KILLS:-1000} cargo test --locked --workspace --test kill -- --nocapture
}
run_proxy() {
  FENLEI_PROPTEST_CASES=${FENLEI_PROPTEST_CASES:-100} cargo test --locked --workspace --test fault_sync -- --nocapture
}
run_fuzz() {
  bash scripts/fuzz.sh run "${FENLEI_FUZZ_SECONDS:-600}"
}
run_hostile() {
  FENLEI_HOSTILE_CASES=${FENLEI_HOSTILE_CASES:-10000} FENLEI_HOSTILE_SEED=${FENLEI_HOSTILE_SEED:-7} \
    cargo test --locked --workspace --test hostile_property -- --nocapture
}

case "$what" in
  kill) run_kill ;;
  proxy) run_proxy ;;
  fuzz) run_fuzz ;;
  hostile) run_hostile ;;
  all) run_kill; run_proxy; run_fuzz; run_hostile ;;
  *) echo "usage: $0 kill|proxy|fuzz|hostile|all" >&2; exit 2 ;;
esac
