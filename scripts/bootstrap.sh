#!/usr/bin/env bash
# Checks (and where it can, installs) what building and testing Fenlei needs. Called by run.sh
# and test.sh, so a fresh machine needs nothing done by hand beyond the Rust toolchain its image
# ships (rustup, 1.95 or newer).
set -euo pipefail

need_rust="1.95"
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "bootstrap: no cargo found. Install Rust $need_rust or newer with rustup (https://rustup.rs)." >&2
    exit 1
  fi
fi
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need_rust" "$have" | sort -V | head -1)" != "$need_rust" ]; then
  echo "bootstrap: rustc $have is older than $need_rust; run 'rustup update'." >&2
  exit 1
fi
# clippy and rustfmt: part of the default rustup profile; add them if this toolchain lacks them.
for component in clippy rustfmt; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
