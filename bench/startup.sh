#!/usr/bin/env bash
# bench/startup.sh — see bench/startup.py. Builds what it needs, prints the figures and ratios, appends
# them to bench/RESULTS.md. Exits non-zero only when something fails to run.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
cd "$BENCH_DIR" && python3 startup.py
