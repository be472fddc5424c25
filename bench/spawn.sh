#!/usr/bin/env bash
# bench/spawn.sh: what netvm costs programs that start many processes (issue 16).
#
# Two measurements, natively and under `netvm run -c FILE --` (the default stack,
# lwip0), in the same run:
#   fork+exec: `sh -c` running /bin/true SPAWNS times in a loop (sh forks, the child
#              execs /bin/true, sh waits for it); each new process costs netvm ptrace
#              stops (fork, the child's first stop, exec, exit);
#   start-up:  one `true`: netvm's own start and teardown, with the session's private
#              user and network namespaces (as bench/startup.sh measures them).
# The loop's wall time includes one start-up; the per-process difference printed
# subtracts the start-ups' difference first.
#
#   bench/spawn.sh                          (builds netvm in release mode first)
#   NETVM=path REPS=3 SPAWNS=500 bench/spawn.sh
#
# Environment (all optional):
#   NETVM=PATH        the netvm to measure (default: build this tree with cargo)
#   REPS=5            timed runs of each loop (native and netvm alternate, the order
#                     rotating), after one untimed warm-up of each
#   SPAWNS=1500       processes per loop
#   STARTUP_REPS=21   timed runs of each start-up (alternating), after one warm-up
#
# Works as root or as any user that may make user namespaces. netvm runs with `-c` on a
# copy of the repository's modules.toml, so a user's ~/.config/netvm/modules.toml or
# $NETVM_CONFIG does not change what is measured. Prints a table of medians, their
# ratios to native and the range of the runs, then one JSON line with every run. A
# benchmark, not a test: it judges nothing, and exits non-zero only when the build or
# a run fails.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME, printf and awk all with a decimal point
name=spawn.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

REPS=${REPS:-5}
SPAWNS=${SPAWNS:-1500}
STARTUP_REPS=${STARTUP_REPS:-21}
positive REPS SPAWNS STARTUP_REPS
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 or later (for EPOCHREALTIME)"
true_bin=$(type -P true) || die "needs a true(1) program: sudo apt-get install -y coreutils"
netvm_binary

bench_workdir
"$NETVM" run -c "$tmp/modules.toml" -- "$true_bin" || die "$NETVM cannot run a command"

# Seconds one run of "$@" takes, with six decimals.
time_s() {
    local start=$EPOCHREALTIME end
    "$@" >/dev/null || die "$* failed"
    end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }'
}

# shellcheck disable=SC2016
loop='i=0; while [ "$i" -lt "$1" ]; do "$2"; i=$((i + 1)); done'
run() {   # VARIANT: one timed run, appended to $tmp/VARIANT
    case $1 in
        native-loop) time_s sh -c "$loop" spawn "$SPAWNS" "$true_bin" ;;
        netvm-loop) time_s "$NETVM" run -c "$tmp/modules.toml" -- sh -c "$loop" spawn "$SPAWNS" "$true_bin" ;;
        native-true) time_s "$true_bin" ;;
        netvm-true) time_s "$NETVM" run -c "$tmp/modules.toml" -- "$true_bin" ;;
    esac >>"$tmp/$1"
}

for v in native-true netvm-true native-loop netvm-loop; do run "$v" && rm "$tmp/$v"; done # warm-up
for ((i = 0; i < STARTUP_REPS; i++)); do
    if ((i % 2)); then run netvm-true; run native-true; else run native-true; run netvm-true; fi
done
for ((i = 0; i < REPS; i++)); do
    if ((i % 2)); then run netvm-loop; run native-loop; else run native-loop; run netvm-loop; fi
done

declare -A med
for v in native-loop netvm-loop native-true netvm-true; do med[$v]=$(median <"$tmp/$v"); done
# ms VARIANT: its runs in milliseconds, one a line.
ms() { awk '{ printf "%.3f\n", $1 * 1000 }' "$tmp/$1"; }
row() {   # LABEL VARIANT BASE UNIT(s or ms)
    local m base runs
    if [[ $4 == ms ]]; then
        m=$(ms "$2" | median) base=$(ms "$3" | median) runs=$(ms "$2" | minmax)
    else
        m=${med[$2]} base=${med[$3]} runs=$(minmax <"$tmp/$2")
    fi
    printf '%-40s %12s %8s %23s\n' "$1" "$m $4" "$(ratio "$m" "$base")" "$runs"
}
printf 'fork+exec of %s x /bin/true: median of %s runs; start-up: median of %s runs\n' \
    "$SPAWNS" "$REPS" "$STARTUP_REPS"
printf '%-40s %12s %8s %23s\n' "" "median" "/ native" "runs min-max"
row "native sh loop" native-loop native-loop s
row "netvm run -- sh loop" netvm-loop native-loop s
row "native true" native-true native-true ms
row "netvm run -- true" netvm-true native-true ms
per_spawn_us=$(awk -v nl="${med[netvm-loop]}" -v l="${med[native-loop]}" -v nt="${med[netvm-true]}" \
    -v t="${med[native-true]}" -v n="$SPAWNS" 'BEGIN { printf "%.1f", ((nl - l) - (nt - t)) / n * 1e6 }')
native_per_spawn_us=$(awk -v l="${med[native-loop]}" -v t="${med[native-true]}" -v n="$SPAWNS" \
    'BEGIN { printf "%.1f", (l - t) / n * 1e6 }')
startup_ms=$(awk -v a="${med[netvm-true]}" -v b="${med[native-true]}" 'BEGIN { printf "%.3f", (a - b) * 1000 }')
echo "per process: native $native_per_spawn_us us, netvm +$per_spawn_us us; netvm's start-up: +$startup_ms ms"

json_runs() { mapfile -t r <"$tmp/$1" && json_list "${r[@]}"; }
printf '{"spawn":{"native_s":%s,"netvm_s":%s,"ratio":%s,"native_runs":%s,"netvm_runs":%s,"processes":%s,"native_us_per_process":%s,"netvm_extra_us_per_process":%s},' \
    "${med[native-loop]}" "${med[netvm-loop]}" "$(ratio "${med[netvm-loop]}" "${med[native-loop]}")" \
    "$(json_runs native-loop)" "$(json_runs netvm-loop)" "$SPAWNS" "$native_per_spawn_us" "$per_spawn_us"
printf '"startup":{"native_s":%s,"netvm_s":%s,"ratio":%s,"netvm_extra_ms":%s,"native_runs":%s,"netvm_runs":%s},"reps":%s,"startup_reps":%s}\n' \
    "${med[native-true]}" "${med[netvm-true]}" "$(ratio "${med[netvm-true]}" "${med[native-true]}")" \
    "$startup_ms" "$(json_runs native-true)" "$(json_runs netvm-true)" "$REPS" "$STARTUP_REPS"
