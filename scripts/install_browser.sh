#!/usr/bin/env bash
# Headless Chromium from Debian, for the viewer's browser test (tests/test_viewer.py) and for
# screenshots of the viewer (docs/viewer.md). Run as root (or with sudo). The test skips, with a
# message, when /usr/bin/chromium is absent.
set -euo pipefail
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
/usr/bin/chromium --version
