#!/usr/bin/env bash
# Stages what the desktop package installs under <prefix>/share/sdlab, in
# target/sdlab-stage/share/sdlab/:
#   Cargo.toml, Cargo.lock   the root manifest and lock the learner's workspaces are generated from
#   scenarios/               guides, services, solutions, the kit (no build output)
#   ui/dist/                 the built web UI
#   vendor/                  `cargo vendor` of every crate a scenario's service or solution builds
#                            with, so a learner's first build needs no network
# Run from anywhere; needs cargo (scripts/deps.sh --desktop installs the rest; scripts/node.sh
# the Node.js of the UI's build).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
stage=target/sdlab-stage/share/sdlab
rm -rf target/sdlab-stage
mkdir -p "$stage/ui"

echo "stage: the web UI"
bash scripts/build-ui.sh >/dev/null
cp -r ui/dist "$stage/ui/dist"
rm -f "$stage/ui/dist/.sources.sha256"

echo "stage: scenarios and manifests"
cp Cargo.toml Cargo.lock "$stage/"
# Everything under scenarios/ except build output.
tar --exclude=target --exclude='*~' -cf - scenarios | tar -xf - -C "$stage"

echo "stage: vendoring the services' crates"
# The exact workspaces the lab generates for every scenario's service and solution, so the
# vendored set is what a learner's build resolves, and nothing else (no desktop or engine crates).
cargo build -q -p sdlab-cli --locked
workspaces=target/sdlab-stage/workspaces
mapfile -t manifests < <(SDLAB_ROOT="$PWD" ./target/debug/sdlab stage-workspaces "$workspaces")
first=${manifests[0]}
sync_args=()
for m in "${manifests[@]:1}"; do sync_args+=(--sync "$m"); done
cargo vendor --quiet --manifest-path "$first" "${sync_args[@]}" "$stage/vendor" >/dev/null
rm -rf "$workspaces"
# Windows import libraries (about half the bytes) are never linked on Linux: drop them from
# the Linux package, and from each crate's checksum list so cargo still verifies the rest.
python3 - "$stage/vendor" <<'PY'
import json, pathlib, re, sys
for crate in pathlib.Path(sys.argv[1]).iterdir():
    if not re.match(r"(windows_[a-z0-9_]+|winapi-(i686|x86_64)-pc-windows-gnu)(-[0-9.]+)?$", crate.name):
        continue
    sums = json.loads((crate / ".cargo-checksum.json").read_text())
    for rel in list(sums["files"]):
        if rel.startswith("lib/") or rel.endswith((".a", ".lib")):
            (crate / rel).unlink(missing_ok=True)
            del sums["files"][rel]
    (crate / ".cargo-checksum.json").write_text(json.dumps(sums))
PY
echo "stage: $(du -sh "$stage" | cut -f1) in $stage ($(ls "$stage/vendor" | wc -l) crates vendored)"
