#!/usr/bin/env bash
# The desktop package's acceptance test, on a real package, a real X display and no network:
#   1. the .deb (target/installers/, built by installers/deb.sh) installs: unpacked into a
#      fresh prefix, and, as root, also installed and removed again with dpkg;
#   2. in a network namespace with only loopback (so crates.io is unreachable), the installed
#      app opens its window under Xvfb: window title, a screenshot (kept in
#      target/desktop-artifacts/), and a pixel check that the sidebar's scenario list rendered;
#   3. through the app's own API: the solution applied to the learner's code, scenario t1-05
#      (PostgreSQL, Redis, two instances) started (its service built from the package's vendored crates, with an empty CARGO_HOME)
#      and the check PASSES;
#   4. the window is closed (WM_DELETE_WINDOW, as a window manager does) and no PostgreSQL,
#      Redis, nginx or service process of the app is left.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
deb=$(ls -t target/installers/*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    echo "test-deb: no package in target/installers/; run installers/deb.sh first" >&2
    exit 1
fi
work=$(mktemp -d /tmp/sdlab-deb-test.XXXXXX)
chmod 755 "$work"
artifacts=$repo/target/desktop-artifacts
mkdir -p "$artifacts"
echo "test-deb: $deb ($(du -h "$deb" | cut -f1)); work dir $work"

# 1. Install.
dpkg-deb -f "$deb" Depends | tee "$work/depends"
grep -q postgresql "$work/depends" && grep -q nginx "$work/depends" \
    && grep -q redis-server "$work/depends" \
    || { echo "test-deb: the package must depend on postgresql, nginx and redis-server" >&2; exit 1; }
prefix=$work/prefix
dpkg-deb -x "$deb" "$prefix"
for f in usr/bin/sdlab-desktop usr/share/sdlab/Cargo.lock usr/share/sdlab/ui/dist/index.html \
         usr/share/sdlab/scenarios/t1-01-diagnosing-failures/scenario.toml \
         usr/share/sdlab/scenarios/t1-05-caching-with-redis/scenario.toml usr/share/sdlab/vendor; do
    [ -e "$prefix/$f" ] || { echo "test-deb: the package lacks /$f" >&2; exit 1; }
done
ls "$prefix"/usr/share/applications/*.desktop >/dev/null
if [ "$(id -u)" = 0 ]; then
    name=$(dpkg-deb -f "$deb" Package)
    dpkg -i "$deb" >/dev/null
    [ -x /usr/bin/sdlab-desktop ] && [ -d /usr/share/sdlab/vendor ]
    dpkg -r "$name" >/dev/null
    [ ! -e /usr/bin/sdlab-desktop ] && [ ! -e /usr/share/sdlab/scenarios ]
    echo "test-deb: dpkg -i and dpkg -r $name: ok"
fi

# 2-4. Run it with no network: a new network namespace has only a loopback device.
driver=(/usr/bin/python3 "$repo/installers/test_desktop.py" --prefix "$prefix" --work "$work" --artifacts "$artifacts")
if [ "$(id -u)" = 0 ]; then
    unshare --net -- sh -c 'ip link set lo up && exec "$@"' sh "${driver[@]}"
else
    # Unprivileged: a user namespace maps us to root inside it.
    unshare --map-root-user --net -- sh -c 'ip link set lo up && exec "$@"' sh "${driver[@]}"
fi
rm -rf "$work"
echo "test-deb: PASS"
