#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (with the short reliability runs: 30
# kills, 6 fault-proxy schedules, the fuzz corpora; docs/reliability.md), the media tests again
# with blobs in S3 (moto), cargo deny, the Swift bindings check, the Kotlin API on the JVM (JUnit 5
# via Maven Surefire), the Python API (pytest) and the web dashboard end to end in headless Chromium.
# Usage: scripts/test.sh        (honours CARGO_TARGET_DIR; default ./target)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
bootstrap_binding_tools
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
# CI builds once in a fresh clone: incremental state (~2 GB) would never be reused.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== layers: no import cycle between the modules of core/src or server/src (docs/architecture.md)"
python3 scripts/check-layers.py --self-test
python3 scripts/check-layers.py core/src server/src
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# Tests that need PostgreSQL are #[ignore]d (the plain run lists them as ignored); the runs below
# include them. Every cargo command here selects the whole workspace: selecting one package (-p) unifies features
# differently (fenlei-core without "uniffi"), which rebuilt the core, the server and every test.
echo "== PostgreSQL: the server's PostgreSQL storage tests and the backend-independent e2e tests on a throwaway cluster ($target_dir/pg; docs/postgres.md)"
pg_url=$(bash scripts/postgres.sh start "$target_dir/pg")
trap 'bash scripts/postgres.sh stop "$target_dir/pg"' EXIT
# pg:: includes pg::queries::parity_tests (every supervisor query, the dashboard's sign-in and
# overview, the media rules and the tamper chain answer as on SQLite; two instances appending).
FENLEI_TEST_DATABASE_URL=$pg_url cargo test --workspace --locked --lib -- pg:: --include-ignored
# verify-chain --database-url as a command.
FENLEI_TEST_DATABASE_URL=$pg_url cargo test --workspace --locked --test pg_verify_chain -- --include-ignored
FENLEI_TEST_DATABASE_URL=$pg_url cargo test --workspace --locked \
  --test sync_e2e --test supervision_e2e --test authz_matrix --test media_sync \
  --test hostile_media --test evidence_flags --test dashboard_session --test tamper \
  --test fault_sync --test tls --test hostile_documents --test hostile_property \
  --test hostile_output --test hostile_connections
# Two server processes on one database: devices syncing through both converge (docs/deploy.md).
FENLEI_TEST_DATABASE_URL=$pg_url cargo test --workspace --locked --test two_instances -- --include-ignored
# Two instances racing one upload: on the blob folder, then on S3 (moto).
FENLEI_TEST_DATABASE_URL=$pg_url cargo test --workspace --locked --test media_instances -- --include-ignored
FENLEI_TEST_DATABASE_URL=$pg_url FENLEI_MOTO_SERVER=$(bash scripts/moto.sh path) FENLEI_TEST_S3=1 \
  cargo test --workspace --locked --test media_instances -- --include-ignored
bash scripts/postgres.sh stop "$target_dir/pg"
trap - EXIT
echo "== object storage: blob store and media e2e tests against moto's S3 server (scripts/moto.sh)"
FENLEI_MOTO_SERVER=$(bash scripts/moto.sh path) FENLEI_TEST_S3=1 \
  cargo test --workspace --locked --test blobs_s3 --test media_sync --test hostile_media \
  -- --include-ignored
echo "== cargo deny: licenses, bans, sources (advisories need GitHub; docs/reliability.md)"
bash scripts/deny.sh
echo "== swift bindings: generated from the library and checked complete (no Swift compiler here)"
bash scripts/bindings.sh swift
python3 scripts/check-swift-bindings.py "$target_dir/debug/libfenlei_ffi.so" "$target_dir/bindings/swift"
echo "== kotlin bindings on the JVM"
bash scripts/test-kotlin.sh
echo "== python bindings"
bash scripts/test-python.sh
echo "== dashboard end to end in headless Chromium (screenshots in $target_dir/dashboard-screenshots)"
bash scripts/test-dashboard.sh
