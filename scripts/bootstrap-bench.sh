#!/usr/bin/env bash
# Tools the benchmarks compare against (not needed for building or testing):
# vipsthumbnail (Debian libvips-tools) for the photo ingest benchmark.
set -euo pipefail
if ! command -v vipsthumbnail >/dev/null 2>&1; then
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq libvips-tools
fi
vipsthumbnail --vips-version
