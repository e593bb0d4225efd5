#!/usr/bin/env bash
# Installs what is missing, builds `sdlab` and puts it on your PATH.
#   ./install.sh && sdlab start t1-01
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -p sdlab-cli
if [ "$(id -u)" = 0 ]; then bin=/usr/local/bin; else bin="$HOME/.local/bin"; mkdir -p "$bin"; fi
ln -sf "$PWD/target/release/sdlab" "$bin/sdlab"
echo "installed: $bin/sdlab -> $PWD/target/release/sdlab"
case ":$PATH:" in *":$bin:"*) ;; *) echo "add $bin to your PATH" ;; esac
