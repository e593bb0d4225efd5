#!/usr/bin/env bash
# Sets System Design Lab up on this machine, then `sdlab` opens it:
#   ./install.sh && sdlab
# 1. what is missing (scripts/deps.sh: PostgreSQL, nginx, Redis, a C toolchain, Rust);
# 2. `sdlab`, built and linked onto your PATH;
# 3. the web UI, built once into ui/dist (scripts/build-ui.sh; Node.js 20.19+ is fetched from
#    the npm registry when the system's is older), served by `sdlab` without Node.js;
# 4. every scenario's service compiled ahead of its first start (`sdlab prebuild`), so a
#    first start only seeds its database.
# Safe to run again: each step skips what is already done.
# SDLAB_INSTALL_PROFILE=debug builds `sdlab` in the dev profile (the test suite's, which
# reuses its build); SDLAB_PREBUILD="t1-01 ..." prebuilds only those scenarios; SDLAB_BIN_DIR
# is where `sdlab` is linked (default ~/.local/bin, /usr/local/bin for root).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

profile="${SDLAB_INSTALL_PROFILE:-release}"
case "$profile" in
release) cargo build --release --locked -p sdlab-cli; out=target/release ;;
debug) cargo build --locked -p sdlab-cli; out=target/debug ;;
*) echo "SDLAB_INSTALL_PROFILE is release or debug, not $profile" >&2; exit 2 ;;
esac
if [ -n "${SDLAB_BIN_DIR:-}" ]; then bin="$SDLAB_BIN_DIR"
elif [ "$(id -u)" = 0 ]; then bin=/usr/local/bin
else bin="$HOME/.local/bin"; fi
mkdir -p "$bin"
ln -sf "$PWD/$out/sdlab" "$bin/sdlab"
echo "installed: $bin/sdlab -> $PWD/$out/sdlab"

bash scripts/build-ui.sh

# shellcheck disable=SC2086 # a list of ids
"$out/sdlab" prebuild ${SDLAB_PREBUILD:-}

case ":$PATH:" in *":$bin:"*) echo "Ready: run sdlab" ;; *) echo "Ready: add $bin to your PATH, then run sdlab" ;; esac
