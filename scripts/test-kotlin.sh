#!/usr/bin/env bash
# The Kotlin API on the JVM: generates the JVM-flavour Kotlin bindings for this machine's library
# and runs android/jvm-tests (Maven fetches the Kotlin compiler, JNA and JUnit itself).
# Usage: scripts/test-kotlin.sh [maven args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

bash scripts/bindings.sh kotlin-jvm
# No Kotlin compile daemon: it would outlive the run (CI waits on nothing it leaves behind).
exec mvn -B -ntp -f android/jvm-tests/pom.xml -Dkotlin.compiler.daemon=false \
  -Dfenlei.bindings.dir="$target_dir/bindings/kotlin-jvm" \
  -Dfenlei.lib.dir="$target_dir/debug" \
  -Dfenlei.maven.build.dir="$target_dir/jvm-tests" \
  "$@" test
