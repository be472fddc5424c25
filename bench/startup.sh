#!/usr/bin/env bash
# bench/startup.sh: what the session's private namespaces cost at start.
#
# Times `netvm run -- true` on the default stack with its private user and
# network namespaces, and with `--filter-only` (no namespaces), interleaved, and
# reports the medians and their difference: the namespaces' set-up and teardown
# (the helper's fork, unshare, the id maps). Native `true` is timed too, for
# scale. A benchmark, not a test: it never judges the figures.
#
# Environment (all optional):
#   NETVM=PATH   the netvm to measure (default: build this tree with cargo)
#   REPS=41      timed runs of each variant (one untimed warm-up first)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPS=${REPS:-41}
if [[ -z ${NETVM:-} ]]; then
    cargo build --release --quiet --manifest-path "$here/../Cargo.toml"
    NETVM="$here/../target/release/netvm"
fi

# Milliseconds one run of "$@" takes, with three decimals.
time_ms() {
    local start=$EPOCHREALTIME
    "$@" >/dev/null
    local end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

variants=(native filter-only namespaces)
run_variant() {
    case $1 in
        native) time_ms /bin/true ;;
        filter-only) time_ms "$NETVM" run --filter-only -- /bin/true ;;
        namespaces) time_ms "$NETVM" run -- /bin/true ;;
    esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in "${variants[@]}"; do run_variant "$v" >/dev/null; done
for ((i = 0; i < REPS; i++)); do
    for v in "${variants[@]}"; do run_variant "$v" >>"$tmp/$v"; done
done

declare -A med
for v in "${variants[@]}"; do med[$v]=$(median <"$tmp/$v"); done
printf '%-12s %10s\n' variant "median ms"
for v in "${variants[@]}"; do printf '%-12s %10s\n' "$v" "${med[$v]}"; done
cost=$(awk -v a="${med[namespaces]}" -v b="${med[filter-only]}" 'BEGIN { printf "%.3f", a - b }')
echo "namespace set-up: $cost ms per session (namespaces - filter-only, $REPS runs each)"
printf '{"reps":%d,"native_ms":%s,"filter_only_ms":%s,"namespaces_ms":%s,"namespace_cost_ms":%s}\n' \
    "$REPS" "${med[native]}" "${med[filter-only]}" "${med[namespaces]}" "$cost"
