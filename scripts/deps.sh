#!/usr/bin/env bash
# Installs what System Design Lab needs that a fresh Debian/Ubuntu machine may lack:
# PostgreSQL server binaries (the lab starts its own servers; no system cluster is created),
# a C toolchain for crates, and cargo-nextest for the test suite. Safe to run again.
# --desktop: also what the desktop app builds with; --test: everything the tests use.
set -euo pipefail

need_apt=()
have_pg() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; }
have_pg || need_apt+=(postgresql)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v setpriv >/dev/null 2>&1 || need_apt+=(util-linux)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
# scripts/node.sh checks the Node.js it fetches for the UI's build with openssl.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# Scenario t1-04 puts a real nginx in front of the service; the lab starts it itself.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
# Scenarios with a cache run a real redis-server; the lab starts its own (no system service).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
# The browser tests drive Debian's chromium through playwright-core. (Node.js, for the UI's
# build and these tests, comes from scripts/node.sh.)
if [ "${1:-}" = "--test" ]; then
    command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
    # The dashboards' test (cli/tests/it/prometheus.rs) runs Debian's prometheus on its own
    # port and storage; the package's service is not started (policy-rc.d below).
    command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
fi

# The desktop app (Tauri v2): WebKitGTK and friends to build it; for its test (--test) a real
# X display (Xvfb), python3-xlib/ImageMagick for the window and screenshot, iproute2 for a
# network-less namespace.
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || need_apt+=("$1"); }
if [ "${1:-}" = "--desktop" ] || [ "${1:-}" = "--test" ]; then
    for p in libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev file; do
        need_pkg "$p"
    done
fi
if [ "${1:-}" = "--test" ]; then
    for p in xvfb xauth imagemagick iproute2 python3-xlib; do need_pkg "$p"; done
fi

if ((${#need_apt[@]})); then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "deps: installing ${need_apt[*]}"
    # The lab runs its own PostgreSQL per scenario; don't let the package create and start
    # a system-wide cluster on port 5432.
    $sudo mkdir -p /etc/postgresql-common
    if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
        echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    # Packages such as nginx and redis-server start a system service on install; the lab
    # starts its own servers, so tell invoke-rc.d not to start anything while we install.
    policy_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    $sudo apt-get update
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        -o Dpkg::Options::=--force-confold "${need_apt[@]}"
    if [ -n "$policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "deps: installing Rust with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

if [ "${1:-}" = "--test" ] && ! cargo nextest --version >/dev/null 2>&1; then
    echo "deps: installing cargo-nextest"
    cargo install cargo-nextest --locked
fi
