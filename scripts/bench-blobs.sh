#!/usr/bin/env bash
# Blob store throughput, the data folder against S3 on moto (docs/benchmarks.md, "Blob stores").
# Usage: scripts/bench-blobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FENLEI_MOTO_SERVER=$(bash scripts/moto.sh path) cargo bench --locked -q -p fenlei-e2e --bench blob_stores
