#!/usr/bin/env bash
# The whole test suite: unit tests, real PostgreSQL servers, real load, golden scenario
# tests and lints. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The desktop shell has no tests of its own here: installers/test-deb.sh tests the package.
cargo nextest run --workspace --exclude sdlab-desktop --locked --profile ci \
    || { cat target/reliability-summary.txt 2>/dev/null; exit 1; }
# The reliability suite's tally: cases tried, survived, anything lost (must be 0).
cat target/reliability-summary.txt
# The browser test: the web UI built, then Debian's chromium (playwright-core) driving a real
# `sdlab serve` through scenario t1-01; screenshots in target/ui-artifacts/.
cargo build -p sdlab-cli --locked
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
node ui/tests/e2e.mjs
# The desktop app: build its .deb, install it, run it under Xvfb without a network, check
# t1-01 with the solution through it, close the window, nothing left running.
bash installers/deb.sh
bash installers/test-deb.sh
