#!/usr/bin/env bash
# bench/loadgen.sh — the lab's load generator against oha and wrk, in one run, on the same cores.
#
# 1. Throughput: the same trivial endpoint (bench-server `/`, pinned to CPU 0) driven at full
#    speed for $SECONDS_EACH s by each tool (pinned to CPU 1, one thread, 64 connections); the lab
#    runs its closed model (the generator's fast path). Each tool's CPU time per request is
#    measured too, so the ratios hold even when a busy machine makes the server the bottleneck.
# 2. Accuracy: bench-server `/stall` stalls 1 s every 10 s; each tool sends a fixed $RATE
#    requests/s for 30 s (oha with --latency-correction); their p50/p99/p99.9 are compared with
#    the coordinated-omission-corrected reference computed from the schedule (bench-load prints it).
# 3. Low end: the same fast endpoint (`/`, never stalls) at $RATE requests/s for $LOW_SECONDS s,
#    lab vs oha --latency-correction: p50/p90 should be the server's own time (~0.1 ms), not the
#    generator's timer (the lab's was 1 ms ticks before its timerfd). The lab's CPU share over
#    the run shows what keeping that schedule costs.
# Prints the figures and ratios and appends them to bench/RESULTS.md. Exits non-zero only when
# something fails to run, never on a missed target.
set -euo pipefail
source "$(dirname "$0")/tools.sh"

SECONDS_EACH="${SECONDS_EACH:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
RATE="${RATE:-1000}"
ACCURACY_SECONDS="${ACCURACY_SECONDS:-30}"
LOW_SECONDS="${LOW_SECONDS:-10}"

# The machine's load before the bench adds its own (the generators and server keep ~2 busy).
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_server
URL="http://127.0.0.1:$SERVER_PORT"
echo "bench: server on $URL (CPU 0); generators on CPU 1" >&2

json_field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

# CPU seconds (user + system) a command used, from /usr/bin/time; its stdout passes through.
CPU_DIR="$(mktemp -d)"
cpu_of() { local name="$1"; shift; /usr/bin/time -f "%U %S" -o "$CPU_DIR/$name" "$@"; }
# Generator CPU per request in µs: $1 = name, $2 = requests/s over $SECONDS_EACH s.
us_per_request() { awk -v rps="$2" -v s="$SECONDS_EACH" '{ printf "%.1f", ($1 + $2) * 1e6 / (rps * s) }' "$CPU_DIR/$1"; }

echo "bench: throughput, ${SECONDS_EACH} s each" >&2
lab_rps=$(cpu_of lab taskset -c 1 "$BIN/bench-load" --url "$URL" --duration "$SECONDS_EACH" --connections "$CONNECTIONS" --threads 1 | json_field 'd["requests_per_s"]')
oha_rps=$(cpu_of oha taskset -c 1 oha -z "${SECONDS_EACH}s" -c "$CONNECTIONS" --no-tui --output-format json "$URL/" | json_field 'd["summary"]["requestsPerSec"]')
wrk_rps=$(cpu_of wrk taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" "$URL/" | awk '/Requests\/sec/ {print $2}')
lab_us=$(us_per_request lab "$lab_rps"); oha_us=$(us_per_request oha "$oha_rps"); wrk_us=$(us_per_request wrk "$wrk_rps")

echo "bench: accuracy, ${RATE} req/s for ${ACCURACY_SECONDS} s against 1 s stalls every 10 s" >&2
lab_acc=$(taskset -c 1 "$BIN/bench-load" --url "$URL" --path /stall --duration "$ACCURACY_SECONDS" --rate "$RATE" --threads 1 --reference)
oha_acc=$(taskset -c 1 oha -z "${ACCURACY_SECONDS}s" -q "$RATE" --latency-correction -c 2000 --no-tui --output-format json "$URL/stall")

echo "bench: low end, ${RATE} req/s for ${LOW_SECONDS} s against the fast endpoint" >&2
low_lab=$(cpu_of low taskset -c 1 "$BIN/bench-load" --url "$URL" --path / --duration "$LOW_SECONDS" --rate "$RATE" --threads 1)
low_oha=$(taskset -c 1 oha -z "${LOW_SECONDS}s" -q "$RATE" --latency-correction -c 16 --no-tui --output-format json "$URL/")
low_lab_p50=$(echo "$low_lab" | json_field 'd["p50_us"]'); low_lab_p90=$(echo "$low_lab" | json_field 'd["p90_us"]')
low_oha_p50=$(echo "$low_oha" | json_field 'int(d["latencyPercentiles"]["p50"] * 1e6)')
low_oha_p90=$(echo "$low_oha" | json_field 'int(d["latencyPercentiles"]["p90"] * 1e6)')
# Share of one core the lab used over the low-end run (user + system).
low_cpu=$(awk -v s="$LOW_SECONDS" '{ printf "%.1f", ($1 + $2) * 100 / s }' "$CPU_DIR/low")

ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
ms2() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", (a - b) / 1000 }'; }
lab_p50=$(echo "$lab_acc" | json_field 'd["p50_us"]'); lab_p99=$(echo "$lab_acc" | json_field 'd["p99_us"]'); lab_p999=$(echo "$lab_acc" | json_field 'd["p999_us"]')
ref_p50=$(echo "$lab_acc" | json_field 'd["reference"]["p50_us"]'); ref_p99=$(echo "$lab_acc" | json_field 'd["reference"]["p99_us"]'); ref_p999=$(echo "$lab_acc" | json_field 'd["reference"]["p999_us"]')
oha_p50=$(echo "$oha_acc" | json_field 'int(d["latencyPercentiles"]["p50"] * 1e6)')
oha_p99=$(echo "$oha_acc" | json_field 'int(d["latencyPercentiles"]["p99"] * 1e6)')
oha_p999=$(echo "$oha_acc" | json_field 'int(d["latencyPercentiles"]["p99.9"] * 1e6)')

table=$(cat <<TABLE
Load average (1, 5, 15 min) before the run: $load_before. Above ~1.5, other work shared the cores and every figure below is noisy.

Throughput (trivial endpoint, ${SECONDS_EACH} s, ${CONNECTIONS} connections, 1 generator thread on CPU 1, server on CPU 0):

| tool | requests/s | lab ÷ tool | target | generator CPU µs/request | lab ÷ tool, CPU-bound |
|---|---:|---:|---|---:|---:|
| lab (sdlab_engine::load) | $(printf '%.0f' "$lab_rps") | 1.00 | | $lab_us | 1.00 |
| oha | $(printf '%.0f' "$oha_rps") | $(ratio "$lab_rps" "$oha_rps") | ≥ 1.1 | $oha_us | $(ratio "$oha_us" "$lab_us") |
| wrk | $(printf '%.0f' "$wrk_rps") | $(ratio "$lab_rps" "$wrk_rps") | ≥ 1.0 | $wrk_us | $(ratio "$wrk_us" "$lab_us") |

The last column is the ratio of requests/s the generators would reach if each were the
bottleneck (the inverse ratio of their CPU time per request, user + system). It is what
the targets mean; it differs from the measured one when the server is the bottleneck (a
busy machine, so all three wait on it).

Accuracy (${RATE} req/s for ${ACCURACY_SECONDS} s; the server stalls 1 s every 10 s; reference = coordinated-omission-corrected latencies computed from the schedule of an ideal server, so its p50 is 0 and only p99/p99.9 are compared as ratios):

| | p50 ms | p99 ms | p99.9 ms | p99 ÷ ref | p99.9 ÷ ref |
|---|---:|---:|---:|---:|---:|
| reference (schedule) | $(ms "$ref_p50") | $(ms "$ref_p99") | $(ms "$ref_p999") | 1.00 | 1.00 |
| lab | $(ms "$lab_p50") | $(ms "$lab_p99") | $(ms "$lab_p999") | $(ratio "$lab_p99" "$ref_p99") | $(ratio "$lab_p999" "$ref_p999") |
| oha --latency-correction | $(ms "$oha_p50") | $(ms "$oha_p99") | $(ms "$oha_p999") | $(ratio "$oha_p99" "$ref_p99") | $(ratio "$oha_p999" "$ref_p999") |

Low end (${RATE} req/s for ${LOW_SECONDS} s on the fast endpoint, both measured from the intended send time; target: lab p50 within 0.2 ms of oha's):

| | p50 ms | p90 ms | p50 − oha's ms | p90 − oha's ms | generator CPU, % of a core |
|---|---:|---:|---:|---:|---:|
| lab | $(ms2 "$low_lab_p50") | $(ms2 "$low_lab_p90") | $(diff_ms "$low_lab_p50" "$low_oha_p50") | $(diff_ms "$low_lab_p90" "$low_oha_p90") | $low_cpu |
| oha --latency-correction | $(ms2 "$low_oha_p50") | $(ms2 "$low_oha_p90") | 0.00 | 0.00 | |
TABLE
)
echo "$table"
echo "$table" | append_results "loadgen"
