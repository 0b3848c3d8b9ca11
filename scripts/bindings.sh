#!/usr/bin/env bash
# Builds the FFI library for this machine and generates its bindings (library mode, from the
# unstripped library, with this workspace's own uniffi-bindgen).
# Usage: scripts/bindings.sh [--profile PROFILE] LANG...
#   LANG: python | kotlin-jvm | kotlin-android | swift
#   PROFILE: dev (default; what the tests use) or release-mobile
# Output: $CARGO_TARGET_DIR/bindings/<LANG>/ (CARGO_TARGET_DIR defaults to ./target)
#   python/fenlei/        package: __init__.py, fenlei_core.py, fenlei_ffi.py, libfenlei_ffi.so
#   kotlin-jvm/           org/fenlei/fenlei_ffi.kt, org/fenlei/core/fenlei_core.kt (plain JVM)
#   kotlin-android/       the same with `android = true` (what android/ packs)
#   swift/                Fenlei.swift, FenleiCore.swift, fenlei_*FFI.h, module.modulemap
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

profile=dev
if [ "${1:-}" = "--profile" ]; then
  profile=$2
  shift 2
fi
[ $# -gt 0 ] || { echo "usage: scripts/bindings.sh [--profile PROFILE] python|kotlin-jvm|kotlin-android|swift..." >&2; exit 2; }

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case $profile in dev) out=debug ;; *) out=$profile ;; esac
lib=$target_dir/$out/libfenlei_ffi.so
[ "$(uname)" = Darwin ] && lib=$target_dir/$out/libfenlei_ffi.dylib

# The generator itself is always a dev build: its speed does not matter, its version does.
if [ "$profile" = dev ]; then
  # One invocation: the same feature set as `cargo test --workspace`, so nothing is rebuilt.
  cargo build --locked -q -p fenlei-ffi -p fenlei-uniffi-bindgen
else
  # The mobile library alone, so the bindgen's CLI features never reach it.
  cargo build --locked -q --profile "$profile" -p fenlei-ffi
  cargo build --locked -q -p fenlei-uniffi-bindgen
fi
bindgen=$target_dir/debug/uniffi-bindgen

for lang in "$@"; do
  dest=$target_dir/bindings/$lang
  rm -rf "$dest"
  mkdir -p "$dest"
  case $lang in
    python)
      pkg=$dest/fenlei
      mkdir -p "$pkg"
      "$bindgen" generate --library "$lib" --language python --no-format --out-dir "$pkg" >/dev/null
      cp bindings/python/fenlei/__init__.py "$pkg/"
      cp "$lib" "$pkg/"
      ;;
    kotlin-jvm)
      "$bindgen" generate --library "$lib" --language kotlin --no-format \
        --config bindings/uniffi-jvm.toml --out-dir "$dest" >/dev/null
      ;;
    kotlin-android)
      "$bindgen" generate --library "$lib" --language kotlin --no-format \
        --config android/fenlei/uniffi-android.toml --out-dir "$dest" >/dev/null
      ;;
    swift)
      "$target_dir/debug/uniffi-bindgen-swift" --swift-sources --headers --modulemap \
        --module-name FenleiFFI --modulemap-filename module.modulemap \
        --config bindings/uniffi-swift.toml "$lib" "$dest" >/dev/null
      ;;
    *) echo "bindings.sh: unknown language $lang" >&2; exit 2 ;;
  esac
  echo "bindings: $lang -> $dest"
done
