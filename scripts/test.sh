#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, real PostgreSQL servers, real load, every
# scenario's golden fixes, the browser test and the desktop package. Installs what is missing
# first. Ends with a table of the time each stage and each scenario took
# (scripts/test-times.py), also when a stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
rm -f target/test-times.tsv target/golden-times.tsv target/nextest/ci/junit.xml \
    target/nextest/ci-golden/junit.xml
# disk_use: what the run left on disk (builds and the tests' lab homes), for the closing table.
disk_use() {
    echo "=== disk use"
    du -sh target "${SDLAB_TESTS_DIR:-/tmp/sdlab-tests}" 2>/dev/null || true
    df -h . | tail -1
}
trap 'python3 scripts/test-times.py target || true; disk_use' EXIT

# stage NAME COMMAND...: runs the command, records its time and result for the table.
stage() {
    local name=$1 started=$SECONDS rc=0
    shift
    echo "=== $name"
    "$@" || rc=$?
    printf '%s\t%s\t%s\n' "$name" "$((SECONDS - started))" \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")" >>target/test-times.tsv
    return "$rc"
}

# Disk: CI builds each profile once, so the dev and test builds keep line tables only (a
# backtrace still names its lines) and no incremental caches: target/ stays GBs smaller (the
# disk-use line at the end says how much). The lab's own builds (profile lab) are untouched.
export CARGO_PROFILE_DEV_DEBUG=line-tables-only CARGO_PROFILE_DEV_INCREMENTAL=false
stage "install what is missing" bash scripts/deps.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
# Node.js for the UI's build and the browser tests: the system's if new enough, else the one
# scripts/node.sh fetched from the npm registry.
node_bin="$(bash scripts/node.sh)"
if [ -n "$node_bin" ]; then export PATH="$node_bin:$PATH"; fi
stage "cargo fmt --check" cargo fmt --all --check
stage "clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
# The check loads hold their steady rate for 8 s instead of the scenario's 20 s: same rates,
# same lines, same verdicts (README: SDLAB_CHECK_HOLD_SECS). Learners' checks are untouched.
export SDLAB_CHECK_HOLD_SECS=8
stage "build the tests" cargo nextest run --workspace --exclude sdlab-desktop --locked \
    --profile ci --no-run
# The desktop shell has no tests of its own here: installers/test-deb.sh tests the package.
stage "nextest (unit, servers, load, reliability)" \
    cargo nextest run --workspace --exclude sdlab-desktop --locked --profile ci \
    -E 'not test(golden::every_fix_of_)' \
    || { cat target/reliability-summary.txt 2>/dev/null; exit 1; }
# Every scenario's golden fixes (cli/tests/it/golden.rs), two scenarios at a time
# (.config/nextest.toml, profile ci-golden). Each attempt compiles the learner's package alone
# at opt-level 0 (its dependencies stay optimised; a scenario with a CPU quota keeps its
# optimised build): about 10 s less per attempt (README: SDLAB_SERVICE_OPT_LEVEL).
export SDLAB_SERVICE_OPT_LEVEL=0
# (The same package selection as the build above, so nothing is rebuilt: `-p sdlab-cli` alone
# resolves features differently and recompiled the CLI's tests, ~50 s.)
stage "nextest golden fixes (2 scenarios at a time)" \
    cargo nextest run --workspace --exclude sdlab-desktop --locked --profile ci-golden \
    -E 'test(golden::every_fix_of_)'
unset SDLAB_SERVICE_OPT_LEVEL
# The reliability suite's tally: cases tried, survived, anything lost (must be 0).
cat target/reliability-summary.txt
# The browser test: the web UI built, then Debian's chromium (playwright-core) driving a real
# `sdlab serve` through scenario t1-01; screenshots in target/ui-artifacts/.
stage "build sdlab and the web UI" bash -c 'cargo build -p sdlab-cli --locked &&
    bash scripts/build-ui.sh'
stage "browser test (chromium)" node ui/tests/e2e.mjs
# The page's Redis console and charts on a real `sdlab serve` running t1-05 (same lab home).
stage "browser test of the Redis parts (chromium)" node ui/tests/redis.mjs
# The page's replica parts (charts, apply-delay box, SQL on the replica) running t1-08.
stage "browser test of the replica parts (chromium)" node ui/tests/replica.mjs
# README's Start on a fresh home: the Codespaces image's steps and postCreate (install.sh),
# `sdlab` alone opening the UI in the browser, and postStart (serve.sh) with t1-01's check.
stage "install.sh, sdlab and the Codespaces path (chromium)" node ui/tests/install.mjs
# The desktop app: build its .deb, install it, run it under Xvfb without a network, check
# t1-01 with the solution through it, close the window, nothing left running.
stage "build the .deb" bash installers/deb.sh --debug
stage "test the .deb" bash installers/test-deb.sh
