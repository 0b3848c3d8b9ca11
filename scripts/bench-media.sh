#!/usr/bin/env bash
# Photo ingest benchmark on one core, with vipsthumbnail as the baseline (docs/media.md).
# Usage: scripts/bench-media.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
bash scripts/bootstrap-bench.sh || echo "bench: vipsthumbnail could not be installed; the table will say it is missing" >&2
taskset -c 0 cargo bench --locked -q -p fenlei-core --bench media
