#!/usr/bin/env bash
# bench/overhead.sh: what netvm costs programs that make no network call.
#
# Runs each workload natively, under an allow-all seccomp filter (the "floor": what
# any seccomp-based supervisor costs, without ptrace) and under
# `netvm run --stack none --`, interleaved, REPS times, and reports median wall
# times and ratios: a table for people, then one JSON object on the last line.
#
# A benchmark, not a test: it never judges the figures; it exits non-zero only if
# something fails to build or a workload fails. See bench/README.md.
#
# Environment (all optional):
#   NETVM=PATH        the netvm to measure (default: build this tree with cargo)
#   REPS=9            timed repetitions of each variant (one untimed warm-up first)
#   TAR_FILES=20000   files in the generated tree (100 per directory)
#   TAR_PASSES=5      tar passes over the tree per timed run
#   LOOP_ROUNDS=500000  rounds of stat+read+futex+getppid per timed run
#   SPAWNS=1000       fork+exec of /bin/true per timed run
#   STARTUP_REPS=21   launches of /bin/true to measure the cost of starting netvm
#   TRAPS=2000        calls netvm stops on, per run of the trapped-call probe
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME, printf and awk all with a decimal point

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

REPS=${REPS:-9}
TAR_FILES=${TAR_FILES:-20000}
TAR_PASSES=${TAR_PASSES:-5}
LOOP_ROUNDS=${LOOP_ROUNDS:-500000}
SPAWNS=${SPAWNS:-1000}
STARTUP_REPS=${STARTUP_REPS:-21}
TRAPS=${TRAPS:-2000}

die() {
    echo "overhead.sh: $*" >&2
    exit 1
}

for n in REPS TAR_FILES TAR_PASSES LOOP_ROUNDS SPAWNS STARTUP_REPS TRAPS; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, not '${!n}'"
done
[[ -n ${EPOCHREALTIME:-} ]] || die "needs bash 5 or later (for EPOCHREALTIME)"
for tool in cc tar awk; do
    command -v "$tool" >/dev/null || die "needs $tool"
done
true_bin=$(type -P true) || die "needs a true(1) program"

# --- netvm -------------------------------------------------------------------
if [[ -z ${NETVM:-} ]]; then
    echo "building netvm (cargo build --release)..." >&2
    (cd "$root" && cargo build --release --quiet) || die "cargo build failed"
    NETVM=${CARGO_TARGET_DIR:-$root/target}/release/netvm
fi
[[ -x $NETVM ]] || die "$NETVM is not an executable netvm"
"$NETVM" run --stack none -- "$true_bin" || die "$NETVM cannot run a command"

# --- scratch space: the helper and the tree ------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/netvm-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

helper=$work/overhead-helper
cc -O2 -o "$helper" "$here/overhead-helper.c" || die "cannot compile overhead-helper.c"

echo "creating $TAR_FILES files..." >&2
dirs=$(((TAR_FILES + 99) / 100))
made=0
for ((d = 0; d < dirs; d++)); do
    mkdir -p "$work/tree/d$d"
    for ((f = 0; f < 100 && made < TAR_FILES; f++, made++)); do
        # Deterministic sizes from 100 to 3099 bytes.
        printf '%*s\n' $(((made * 37) % 3000 + 100)) "file $d/$f" >"$work/tree/d$d/f$f"
    done
done

# --- timing ------------------------------------------------------------------
# The three ways of running a command.
variant_native() { "$@"; }
variant_floor() { "$helper" floor "$@"; }
variant_netvm() { "$NETVM" run --stack none -- "$@"; }
variants=(native floor netvm)

# time_once VARIANT CMD...: runs CMD once, prints its wall time in seconds.
time_once() {
    local variant=$1 start end
    shift
    start=$EPOCHREALTIME
    "variant_$variant" "$@" >/dev/null || die "failed ($variant): $*"
    end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f\n", e - s }'
}

# stats: median, minimum and spread ((max - min) / median, in percent) of the
# numbers on standard input, as "MEDIAN MIN SPREAD".
stats() {
    sort -g | awk '{ v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
              printf "%.6f %.6f %.1f\n", m, v[1], (m > 0) ? 100 * (v[NR] - v[1]) / m : 0 }'
}

calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }

# Results, keyed "WORKLOAD.FIELD".
declare -A res=()

# measure WORKLOAD REPS CMD...: one untimed warm-up per variant, then REPS rounds,
# the order of the variants rotating from round to round; records in res the
# median and minimum of each variant, the ratios and the spreads.
measure() {
    local key=$1 reps=$2 r i v median min spread spreads=""
    shift 2
    local -A times=()
    echo "measuring $key ($reps runs of each variant)..." >&2
    for v in "${variants[@]}"; do
        time_once "$v" "$@" >/dev/null
    done
    for ((r = 0; r < reps; r++)); do
        for ((i = 0; i < ${#variants[@]}; i++)); do
            v=${variants[(r + i) % ${#variants[@]}]}
            times[$v]+="$(time_once "$v" "$@") "
        done
    done
    for v in "${variants[@]}"; do
        # shellcheck disable=SC2086 # one number per word, on purpose
        read -r median min spread < <(printf '%s\n' ${times[$v]} | stats)
        res[$key.$v]=$median
        res[$key.$v.min]=$min
        spreads+=${spreads:+/}$spread
    done
    res[$key.spread]=$spreads
    res[$key.ratio]=$(calc %.4f "${res[$key.netvm]} / ${res[$key.native]}")
    res[$key.floor_ratio]=$(calc %.4f "${res[$key.floor]} / ${res[$key.native]}")
    res[$key.min_ratio]=$(calc %.4f "${res[$key.netvm.min]} / ${res[$key.native.min]}")
}

# (a) tar of the tree, written to /dev/zero, which discards it. Not /dev/null:
# GNU tar notices an archive on /dev/null and then does not even read the files.
# Not a pipe either: the reader adds a process and much scheduling noise.
# shellcheck disable=SC2016 # expanded by the inner bash
tar_script='for ((i = 0; i < $1; i++)); do tar -cf /dev/zero -C "$2" tree || exit; done'
measure tar "$REPS" bash -c "$tar_script" tar "$TAR_PASSES" "$work"

# (b) the syscall loop.
measure syscalls "$REPS" "$helper" loop "$LOOP_ROUNDS"

# (c) fork+exec: every new process costs netvm ptrace events (informative only).
# shellcheck disable=SC2016 # expanded by the inner sh
spawn_script='i=0; while [ "$i" -lt "$1" ]; do "$2"; i=$((i + 1)); done'
measure spawn "$REPS" sh -c "$spawn_script" spawn "$SPAWNS" "$true_bin"

# Starting netvm itself: one launch of /bin/true.
measure startup "$STARTUP_REPS" "$true_bin"

# (d) One stop in netvm: a call it always traps and leaves to the kernel. The
# helper times its own loop, so netvm's startup is not in the figure.
echo "measuring one trapped call ($REPS runs of $TRAPS calls)..." >&2
trap_times=""
for ((r = 0; r < REPS; r++)); do
    trap_times+="$("$NETVM" run --stack none -- "$helper" trapped "$TRAPS") " ||
        die "failed: $NETVM run -- $helper trapped $TRAPS"
done
# shellcheck disable=SC2086 # one number per word, on purpose
read -r trap_us trap_min_us _ < <(printf '%s\n' $trap_times | stats)
trap_us=$(calc %.3f "$trap_us")
trap_min_us=$(calc %.3f "$trap_min_us")
native_trap_us=$("$helper" trapped "$((TRAPS * 10))") || die "failed: $helper trapped"

# --- report ------------------------------------------------------------------
calls=$((LOOP_ROUNDS * 4))
per_call_ns=$(calc %.1f "(${res[syscalls.netvm]} - ${res[syscalls.native]}) / $calls * 1e9")
floor_call_ns=$(calc %.1f "(${res[syscalls.floor]} - ${res[syscalls.native]}) / $calls * 1e9")
per_spawn_us=$(calc %.1f "(${res[spawn.netvm]} - ${res[spawn.native]}) / $SPAWNS * 1e6")
startup_ms=$(calc %.2f "(${res[startup.netvm]} - ${res[startup.native]}) * 1e3")

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo
echo "netvm overhead on programs that make no network call"
echo "  netvm:   $NETVM ($("$NETVM" --version))"
echo "  machine: $(uname -sr), $(nproc) CPUs${cpu:+ ($cpu)}"
echo "  times:   median wall time of $REPS runs (launch: $STARTUP_REPS) of each variant"
echo "  floor:   the command under an allow-all seccomp filter, without ptrace"
echo "  min:     ratio of the fastest runs; spread: (max-min)/median of native/floor/netvm"
echo
printf '%-30s %9s %9s %9s %9s %7s %9s  %s\n' \
    workload "native s" "floor s" "netvm s" netvm/nat "(min)" floor/nat "spread %"
row() {
    printf '%-30s %9.4f %9.4f %9.4f %9.4f %7.4f %9.4f  %s\n' "$1" \
        "${res[$2.native]}" "${res[$2.floor]}" "${res[$2.netvm]}" "${res[$2.ratio]}" \
        "${res[$2.min_ratio]}" "${res[$2.floor_ratio]}" "${res[$2.spread]}"
}
row "(a) tar, $TAR_FILES files x $TAR_PASSES" tar
row "(b) syscalls, $LOOP_ROUNDS x 4" syscalls
row "(c) fork+exec x $SPAWNS [info]" spawn
row "    launch of true [info]" startup
echo
echo "  target: netvm/native at most 1.02 for (a) and (b); the rest is informative"
printf '  (b) per call:      netvm %+.1f ns, floor %+.1f ns\n' "$per_call_ns" "$floor_call_ns"
printf '  (c) per process:   netvm %+.1f us (fork, exec and exit stops)\n' "$per_spawn_us"
printf '  launch:            netvm %+.2f ms (start and teardown)\n' "$startup_ms"
printf '  (d) trapped call:  %.1f us median, %.1f us best (native %.2f us)\n' \
    "$trap_us" "$trap_min_us" "$native_trap_us"
echo

json_entry() {
    printf '"%s":{"native_s":%s,"floor_s":%s,"netvm_s":%s,"ratio":%s,"min_ratio":%s,"floor_ratio":%s' \
        "$1" "${res[$1.native]}" "${res[$1.floor]}" "${res[$1.netvm]}" "${res[$1.ratio]}" \
        "${res[$1.min_ratio]}" "${res[$1.floor_ratio]}"
}
printf '{%s,"files":%d,"passes":%d},' "$(json_entry tar)" "$TAR_FILES" "$TAR_PASSES"
printf '%s,"calls":%d,"netvm_extra_ns_per_call":%s,"floor_extra_ns_per_call":%s},' \
    "$(json_entry syscalls)" "$calls" "$per_call_ns" "$floor_call_ns"
printf '%s,"processes":%d,"netvm_extra_us_per_process":%s},' \
    "$(json_entry spawn)" "$SPAWNS" "$per_spawn_us"
printf '%s,"netvm_extra_ms":%s},' "$(json_entry startup)" "$startup_ms"
printf '"trapped_call":{"native_us":%s,"netvm_us":%s,"netvm_min_us":%s,"calls":%d},' \
    "$native_trap_us" "$trap_us" "$trap_min_us" "$TRAPS"
printf '"reps":%d}\n' "$REPS"
