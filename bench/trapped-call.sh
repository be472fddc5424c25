#!/usr/bin/env bash
# The cost of one trapped call under netvm, against a bare ptrace stop measured in
# the same run (issue target: at most twice the bare stop).
#
#   bench/trapped-call.sh            (builds netvm in release mode first)
#   NETVM=path N=50000 REPS=7 bench/trapped-call.sh
#   PIN="taskset -c 0" bench/trapped-call.sh   (everything on one CPU: on a VM whose
#                                               idle vCPUs halt, cross-CPU wake-ups
#                                               otherwise dominate every stop)
#
# Prints a table of medians (microseconds per call) and one JSON line last.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
REPS=${REPS:-7}
PIN=${PIN:-}
if [[ -z "${NETVM:-}" ]]; then
    cargo build --release --quiet
    NETVM=target/release/netvm
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -o "$work/trapped-call" bench/trapped-call.c

declare -A samples
for ((rep = 0; rep < REPS; rep++)); do
    while read -r mode us; do samples[$mode]+="$us "; done < <(
        $PIN "$work/trapped-call" bare "$N"
        $PIN "$NETVM" run --stack lwip0 -- "$work/trapped-call" unix "$N"
        $PIN "$NETVM" run --stack lwip0 -- "$work/trapped-call" inet "$N"
        $PIN "$NETVM" run --stack lwip0 -- "$work/trapped-call" stop "$N"
    )
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
bare=$(median <<< "${samples[bare]}")
unix=$(median <<< "${samples[unix]}")
inet=$(median <<< "${samples[inet]}")
stop=$(median <<< "${samples[stop]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

printf '%-44s %10s %8s\n' "one call (median of $REPS runs of $N)" "us/call" "x bare"
printf '%-44s %10s %8s\n' "bare ptrace stop (seccomp RET_TRACE)" "$bare" "1.00"
printf '%-44s %10s %8s\n' "netvm: getsockname on AF_UNIX (to kernel)" "$unix" "$(ratio "$unix" "$bare")"
printf '%-44s %10s %8s\n' "netvm: getsockname on a virtual socket" "$inet" "$(ratio "$inet" "$bare")"
printf '%-44s %10s %8s\n' "netvm: listen on a virtual socket (ptrace)" "$stop" "$(ratio "$stop" "$bare")"
printf '{"bare_us":%s,"unix_us":%s,"virtual_us":%s,"stop_us":%s,"unix_ratio":%s,"virtual_ratio":%s,"stop_ratio":%s}\n' \
    "$bare" "$unix" "$inet" "$stop" "$(ratio "$unix" "$bare")" "$(ratio "$inet" "$bare")" "$(ratio "$stop" "$bare")"
