#!/usr/bin/env bash
# The t1-01 guide's "/feed under load" table (scenarios/t1-01-*/solution/SOLUTION.md): each
# attempt of the scenario's fixes/ (the broken service, the pool without the index, the index
# without the pool, the solution) started with `sdlab start t1-01 --fix NAME` on a scratch
# copy of the seeded database, then wrk closed-loop against /feed for 10 s with a 2 s timeout,
# at 4 and at 100 connections, with PostgreSQL's new sessions counted around each run.
# Loopback only, bounded (8 runs of 10 s); prints a Markdown table.
#
#   bash bench/t1-01-feed.sh            # all four attempts
#   FIXES="solution" bash bench/t1-01-feed.sh
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk (Debian package)" >&2
    sudo_if_needed apt-get update >&2
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >&2
fi
cargo build --quiet -p sdlab-cli >&2
SDLAB="$PWD/target/debug/sdlab"
FIXES=${FIXES:-"broken pool-without-index index-without-pool solution"}
LOG=$(mktemp)
trap '"$SDLAB" stop t1-01 >/dev/null 2>&1 || true; rm -f "$LOG"' EXIT

# Sessions ever opened on the scratch database the attempt runs on.
sessions() {
    "$SDLAB" sql t1-01 "select sessions from pg_stat_database where datname = 'feed_scratch'" 2>/dev/null |
        { grep -Eo "^ *[0-9]+ *$" || echo 0; } | tr -d " " | head -1
}

echo "| attempt | connections | feeds/s answered | p50 | p99 | non-2xx | timeouts | new sessions |"
echo "|---|---|---|---|---|---|---|---|"
for fix in $FIXES; do
    "$SDLAB" start t1-01 --fix "$fix" >"$LOG" 2>&1 &
    for _ in $(seq 1 600); do
        grep -q '^ready t1-01 ' "$LOG" && break
        sleep 1
    done
    url=$(grep -Eo '^ready t1-01 http://[0-9.:]+' "$LOG" | awk '{print $3}')
    [ -n "$url" ] || { cat "$LOG" >&2; echo "t1-01 --fix $fix did not start" >&2; exit 1; }
    for conns in 4 100; do
        before=$(sessions)
        out=$(wrk -t2 -c"$conns" -d10s --timeout 2s --latency "$url/feed")
        after=$(sessions)
        rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        non2xx=$(awk -F': ' '/Non-2xx/ {print $2}' <<<"$out")
        timeouts=$({ grep -Eo 'timeout [0-9]+' <<<"$out" || true; } | awk '{print $2}')
        echo "| $fix | $conns | $rps | $p50 | $p99 | ${non2xx:-0} | ${timeouts:-0} | $((after - before)) |"
    done
    "$SDLAB" stop t1-01 >/dev/null 2>&1 || true
    wait || true
done
