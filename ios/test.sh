#!/usr/bin/env bash
# One command on a Mac: build the XCFramework and the Swift API, then run the XCTest suite.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/build-xcframework.sh"
cd "$here"
swift test
