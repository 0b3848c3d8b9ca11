#!/usr/bin/env bash
# moto's S3-compatible server (PyPI moto[server]), the real S3 endpoint the object-storage tests
# run against (docs/media-sync.md, "Object storage"). Installed into a venv under
# $CARGO_TARGET_DIR/tools on first use; the tests start it themselves on a free loopback port.
#   scripts/moto.sh path     install if missing, print the moto_server executable's path
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
bootstrap_binding_tools >&2
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
version=5.2.5
venv="$target_dir/tools/moto-$version"
if [ ! -x "$venv/bin/moto_server" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "moto[server]==$version" >&2
fi
case "${1:-}" in
  path) echo "$venv/bin/moto_server" ;;
  *) echo "usage: $0 path" >&2; exit 2 ;;
esac
