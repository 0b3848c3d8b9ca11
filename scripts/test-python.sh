#!/usr/bin/env bash
# The Python binding tests: generates the bindings for this machine's library, installs pytest in a
# venv under the target dir (a fresh machine has nothing), runs bindings/tests/python.
# Usage: scripts/test-python.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

bash scripts/bindings.sh python
# The sync tests drive a real server process on loopback.
cargo build --workspace --locked -q --bins
export FENLEI_SERVER_BIN=$target_dir/debug/fenlei-server
venv=$target_dir/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r bindings/tests/python/requirements.txt
export FENLEI_PY_BINDINGS=$target_dir/bindings/python
# -p no:cacheprovider: no .pytest_cache in the source tree.
exec "$venv/bin/python" -m pytest -p no:cacheprovider bindings/tests/python "$@"
