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

# What the binding tests need beyond Rust (scripts/test.sh calls this): Python 3 with venv (pytest
# is installed into a venv by scripts/test-python.sh), a JDK 17+ and Maven (which fetch the Kotlin
# compiler, JNA and JUnit themselves), and nm (binutils) for the Swift bindings check.
bootstrap_binding_tools() {
  local missing=()
  command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
  command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  command -v nm >/dev/null 2>&1 || missing+=(binutils)
  [ ${#missing[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "bootstrap: please install: ${missing[*]} (Debian package names)" >&2
    return 1
  fi
}

# What the dashboard's end-to-end tests need (scripts/test-dashboard.sh calls this): Debian's
# headless-capable Chromium, and playwright-core pinned by tests/dashboard/package-lock.json
# (installed with `npm ci`, so a fresh machine gets exactly the locked version; playwright-core
# downloads no browser of its own).
bootstrap_dashboard_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q . || missing+=(fonts-noto-cjk)
  if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "bootstrap: installing ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "bootstrap: please install: ${missing[*]} (Debian package names)" >&2
      return 1
    fi
  fi
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/dashboard"
  # Re-installed whenever the lockfile changes (a copy of the installed one is kept as a stamp).
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.fenlei-installed-lock.json"; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.fenlei-installed-lock.json)
  fi
}
