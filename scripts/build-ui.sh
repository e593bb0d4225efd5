#!/usr/bin/env bash
# Builds the web UI into ui/dist (what `sdlab` serves; no Node.js needed at run time), unless
# ui/dist was already built from these exact sources: the hash of every file the build reads is
# kept in ui/dist/.sources.sha256. Uses the Node.js scripts/node.sh provides.
#   bash scripts/build-ui.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sources_hash() {
    find ui -path ui/node_modules -prune -o -path ui/dist -prune -o -path ui/tests -prune \
        -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
}

want="$(sources_hash)"
if [ -f ui/dist/index.html ] && [ "$(cat ui/dist/.sources.sha256 2>/dev/null)" = "$want" ]; then
    echo "web UI: ui/dist is up to date"
    exit 0
fi
node_bin="$(bash scripts/node.sh)"
if [ -n "$node_bin" ]; then export PATH="$node_bin:$PATH"; fi
echo "web UI: building with Node.js $(node --version) (about a minute)"
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
echo "$want" >ui/dist/.sources.sha256
