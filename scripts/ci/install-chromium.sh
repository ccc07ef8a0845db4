#!/usr/bin/env bash
# Installs Debian's chromium for the eval report's headless browser test (tests/PostTrain.Eval.Tests).
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (CI containers run as root).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
