#!/usr/bin/env bash
# Install everything the tests need (Python packages and Debian's Chromium for the
# browser test) and run the whole test suite. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt -r requirements-dev.txt
python -m pip install -q --no-deps -e .  # the package itself (console script `arpg`; scripts import it)
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium
fi
export GRADIO_ANALYTICS_ENABLED=False NO_PROXY=localhost,127.0.0.1 HF_HUB_OFFLINE=1
python -m pytest "$@"
