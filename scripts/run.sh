#!/usr/bin/env bash
# The main job. For now: the demo — load the sample standard and city into a fresh store,
# record inspections on two simulated phones (one merged conflict), print scores and grades.
# Usage: scripts/run.sh [store path]   (default: target/demo/fenlei.sqlite, recreated each run)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
cargo run --release --locked -q -p fenlei-core --example demo -- "${1:-target/demo/fenlei.sqlite}"
