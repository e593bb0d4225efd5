#!/usr/bin/env bash
# Builds the desktop app's Debian package with the Tauri CLI (from the npm registry):
#   target/installers/system-design-lab_<version>_amd64.deb
# It installs /usr/bin/sdlab-desktop, a menu entry, and /usr/share/sdlab (scenarios, the web
# UI, vendored crates: see installers/stage.sh). It depends on Debian's postgresql, nginx,
# redis-server and build-essential; Rust itself is not packaged (the app says how to get it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --desktop
export PATH="$HOME/.cargo/bin:$PATH"
bash installers/stage.sh
npm --prefix installers ci --no-audit --no-fund >/dev/null
# --ci: no prompts. Only the deb target: AppImage's tools are downloaded from GitHub.
# --debug (the test suite's choice): the same package with the shell compiled without
# optimisation, which reuses the test build's compiled engine instead of compiling everything
# again in release mode (minutes on 2 cores). What the package holds and does is the same.
profile=release
tauri_args=(build --ci --bundles deb)
if [ "${1:-}" = "--debug" ]; then
    profile=debug
    tauri_args+=(--debug)
fi
(cd src-tauri && ../installers/node_modules/.bin/tauri "${tauri_args[@]}")
mkdir -p target/installers
rm -f target/installers/*.deb
# Tauri names the file after the product ("System Design Lab_..."); use Debian's convention.
for f in target/"$profile"/bundle/deb/*.deb; do
    cp "$f" "target/installers/$(dpkg-deb -f "$f" Package)_$(dpkg-deb -f "$f" Version)_$(dpkg-deb -f "$f" Architecture).deb"
done
ls -l target/installers/*.deb
