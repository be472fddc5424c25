#!/usr/bin/env bash
# Single-stream iperf3 TCP throughput: client and server on one netvm stack,
# against the same over the host kernel's loopback, in the same run.
#
#   bench/iperf3.sh                  (builds netvm in release mode first)
#   NETVM=path SECONDS_EACH=10 REPS=3 bench/iperf3.sh
#
# The native side runs in a fresh network namespace when possible (root), so the
# host's other sockets and its narrow ephemeral port range stay out of the way.
# Prints a table of medians in Gbit/s and one JSON line last.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-5}
REPS=${REPS:-3}
PORT=${PORT:-5299}
if [[ -z "${NETVM:-}" ]]; then
    cargo build --release --quiet
    NETVM=target/release/netvm
fi
command -v iperf3 >/dev/null || { echo "bench/iperf3.sh needs iperf3" >&2; exit 1; }

# One iperf3 client/server pair in `sh -c`, printing the receiver's bits per second.
pair="iperf3 -s -1 -p $PORT >/dev/null 2>&1 & sleep 0.5; \
iperf3 -J -c 127.0.0.1 -p $PORT -t $SECONDS_EACH | \
python3 -c 'import json,sys; print(json.load(sys.stdin)[\"end\"][\"sum_received\"][\"bits_per_second\"])'; wait"

native() {
    if [[ $(id -u) -eq 0 ]] && unshare -n true 2>/dev/null; then
        unshare -n sh -c "ip link set lo up; $pair"
    else
        sh -c "$pair"
    fi
}

netvm_same_stack() { "$NETVM" run --stack lwip0 -- sh -c "$pair"; }

gbps() { awk '{printf "%.2f", $1 / 1e9}'; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
native_runs=()
netvm_runs=()
for ((rep = 0; rep < REPS; rep++)); do
    native_runs+=("$(native | gbps)")
    netvm_runs+=("$(netvm_same_stack | gbps)")
done
n=$(printf '%s\n' "${native_runs[@]}" | median)
v=$(printf '%s\n' "${netvm_runs[@]}" | median)
ratio=$(awk -v a="$v" -v b="$n" 'BEGIN {printf "%.2f", a / b}')

printf '%-52s %10s\n' "single-stream TCP, median of $REPS x ${SECONDS_EACH}s" "Gbit/s"
printf '%-52s %10s\n' "host kernel loopback" "$n"
printf '%-52s %10s\n' "netvm, client and server on one stack (lwip0)" "$v"
printf '%-52s %10s\n' "netvm / host loopback" "$ratio"
printf '{"host_loopback_gbps":%s,"netvm_same_stack_gbps":%s,"ratio":%s}\n' "$n" "$v" "$ratio"
