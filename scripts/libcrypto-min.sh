#!/usr/bin/env bash
# Builds a small static libcrypto for SQLCipher on Android (docs/reliability.md, "Mobile library
# size"): OpenSSL 3 from the same source the vendored build uses (the openssl-src crate pinned in
# Cargo.lock), with every algorithm family SQLCipher does not use switched off (`no-bulk` and
# friends). SQLCipher needs only AES-256-CBC, HMAC-SHA1/256/512, PBKDF2 and RAND_bytes; OpenSSL's
# default provider links every enabled algorithm, so switching them off is what shrinks it.
#
# Usage: scripts/libcrypto-min.sh OUT_DIR [OPENSSL_TARGET]
#   OPENSSL_TARGET: linux-x86_64 (default, to measure here), android-arm64, android-arm,
#   android-x86_64 (these need ANDROID_NDK_ROOT and the NDK's clang on PATH, as OpenSSL's
#   NOTES-ANDROID.md describes).
# Then build the library against it:
#   OPENSSL_LIB_DIR=OUT_DIR/lib OPENSSL_INCLUDE_DIR=OUT_DIR/include \
#     cargo build --profile release-mobile -p fenlei-ffi --no-default-features \
#     --features sqlcipher-platform-crypto [--target aarch64-linux-android]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [OPENSSL_TARGET]" >&2; exit 2; }
out=$(realpath -m "$1")
target=${2:-linux-x86_64}
crate=$(cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "openssl-src").rsplit("/", 1)[0])')
work=$out/build
rm -rf "$work" "$out/lib" "$out/include"
mkdir -p "$work"
cp -r "$crate/openssl/." "$work/"
cd "$work"
# -Os and per-function sections: the final link (fat LTO, --gc-sections) drops what is unused.
# Kept: asm (AES-NI / ARMv8 crypto extensions: page encryption speed), threads, error strings.
CFLAGS="-Os -ffunction-sections -fdata-sections" ./Configure "$target" \
  --prefix="$out" --libdir=lib \
  no-shared no-module no-tests no-apps no-docs no-dso no-engine no-legacy \
  no-bulk no-ssl no-tls no-dtls no-quic no-sock no-http no-ocsp no-cmp no-cms no-ts no-ct \
  no-srp no-srtp no-psk no-ec no-ec2m no-ecx no-sm2 no-sm3 no-sm4 no-gost no-aria no-camellia \
  no-argon2 no-scrypt no-ml-kem no-ml-dsa no-slh-dsa no-lms no-siv no-ocb no-cmac no-whirlpool \
  no-rfc3779 no-ui-console no-autoload-config no-filenames no-comp no-zlib >/dev/null
make -j"$(nproc)" build_libs >/dev/null
make install_dev >/dev/null
cd /
rm -rf "$work"
printf 'libcrypto.a %s bytes in %s/lib\n' "$(stat -c %s "$out/lib/libcrypto.a")" "$out"
