#!/usr/bin/env bash
# Builds FenleiFFI.xcframework (iOS device, iOS simulator, macOS for `swift test`) and generates the
# Swift API into Sources/Fenlei/Generated. Run on a Mac with Xcode and rustup.
# Usage: ios/build-xcframework.sh        (CARGO_TARGET_DIR is honoured; default ./target)
#
# Order matters: the Swift sources and headers are generated from the UNSTRIPPED library (uniffi
# reads the interface from metadata symbols in it); the static libraries are stripped of debug
# info only afterwards, when they are packed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
profile=release-mobile   # workspace Cargo.toml: size-tuned, panic = "unwind", unstripped
lib=libfenlei_ffi.a

device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)
macs=(aarch64-apple-darwin x86_64-apple-darwin)

# SQLCipher on Apple's CommonCrypto (Security.framework), not the vendored OpenSSL: built on a Mac
# for an Apple target, libsqlite3-sys selects SQLCIPHER_CRYPTO_CC, so no OpenSSL is in the library
# (about 4.5 MB less per slice; docs/reliability.md "Mobile library size").
features=(--no-default-features --features sqlcipher-platform-crypto)
rustup target add "$device" "${simulators[@]}" "${macs[@]}"
for t in "$device" "${simulators[@]}" "${macs[@]}"; do
  cargo build --locked --profile "$profile" -p fenlei-ffi "${features[@]}" --target "$t"
done

# 1. Bindings from the unstripped library (one host slice is enough: the interface is the same).
work=$target_dir/ios-xcframework
rm -rf "$work"
mkdir -p "$work/headers"
cargo build --locked -q -p fenlei-uniffi-bindgen
unstripped=$target_dir/${macs[0]}/$profile/libfenlei_ffi.dylib
[ -f "$unstripped" ] || unstripped=$target_dir/${macs[0]}/$profile/$lib
"$target_dir/debug/uniffi-bindgen-swift" --headers --modulemap --module-name FenleiFFI \
  --modulemap-filename module.modulemap --config bindings/uniffi-swift.toml "$unstripped" "$work/headers"
rm -rf "$here/Sources/Fenlei/Generated"
mkdir -p "$here/Sources/Fenlei/Generated"
"$target_dir/debug/uniffi-bindgen-swift" --swift-sources --config bindings/uniffi-swift.toml \
  "$unstripped" "$here/Sources/Fenlei/Generated"

# 2. Fat libraries per platform, stripped of debug info (-S; global symbols stay for linking).
mkdir -p "$work/ios" "$work/ios-sim" "$work/macos"
cp "$target_dir/$device/$profile/$lib" "$work/ios/$lib"
slices() { for t in "$@"; do echo "$target_dir/$t/$profile/$lib"; done; }
lipo -create $(slices "${simulators[@]}") -output "$work/ios-sim/$lib"
lipo -create $(slices "${macs[@]}") -output "$work/macos/$lib"
for d in ios ios-sim macos; do
  xcrun strip -S "$work/$d/$lib"
done

# 3. The XCFramework.
rm -rf "$here/FenleiFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$work/ios/$lib" -headers "$work/headers" \
  -library "$work/ios-sim/$lib" -headers "$work/headers" \
  -library "$work/macos/$lib" -headers "$work/headers" \
  -output "$here/FenleiFFI.xcframework"

for d in ios ios-sim macos; do
  printf 'FenleiFFI %-8s %s bytes\n' "$d" "$(stat -f %z "$work/$d/$lib")"
done
echo "built $here/FenleiFFI.xcframework and $here/Sources/Fenlei/Generated"
