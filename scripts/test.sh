#!/usr/bin/env bash
# The whole test suite: unit tests, real PostgreSQL servers, real load, golden scenario
# tests and lints. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --profile ci
