# Sourced by the bench scripts: builds the bench binaries and installs the peers (wrk from
# Debian, oha from crates.io) when missing. Safe to source again.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
TOOLS="$REPO/target/bench-tools"
RESULTS="$BENCH_DIR/RESULTS.md"
export PATH="$TOOLS/bin:$PATH"

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (Debian package)" >&2
    sudo_if_needed apt-get update >&2
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >&2
fi
if ! command -v oha >/dev/null 2>&1; then
    echo "bench: installing oha from crates.io into $TOOLS (a few minutes, once)" >&2
    cargo install oha --locked --root "$TOOLS" >&2
fi

echo "bench: building the bench binaries and sdlab (release)" >&2
cargo build --quiet --release -p sdlab-bench -p sdlab-cli --manifest-path "$REPO/Cargo.toml" >&2
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"

# Appends a results section to bench/RESULTS.md: $1 = title, stdin = table rows.
append_results() {
    local title="$1"
    {
        echo
        echo "## $title — $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r), commit $(git -C "$REPO" rev-parse --short HEAD)"
        echo
        cat
    } >>"$RESULTS"
}

# Starts the bench server pinned to CPU 0; sets SERVER_PID and SERVER_PORT.
start_server() {
    local fifo
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    taskset -c 0 "$BIN/bench-server" --threads 1 --lifetime 900 >"$fifo" &
    SERVER_PID=$!
    read -r _ SERVER_PORT <"$fifo"
    rm -f "$fifo"
    trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
}

# ratio a b -> a/b with 2 decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
