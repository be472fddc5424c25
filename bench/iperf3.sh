#!/usr/bin/env bash
# Single-stream iperf3 TCP throughput, in the same run, for:
#   host:       the host kernel's loopback (native, no netvm);
#   same stack: client and server on one netvm stack (lwip0, 127.0.0.1);
#   cross:      server on lwip1, client on lwip0 to 10.0.0.3, through smoltcp and
#               the virtual switch sw0 (MTU 1500, the default);
#   cross mtu:  the same with both stacks' interfaces at MTU $BIG_MTU.
#
#   bench/iperf3.sh                  (builds netvm in release mode first)
#   NETVM=path SECONDS_EACH=10 REPS=3 bench/iperf3.sh
#   BIG_MTU=0 bench/iperf3.sh        (skips the large-MTU variant)
#
# The netvm variants run with `-c` on a copy of the repository's modules.toml (the
# built-in default: lwip0 10.0.0.2 and lwip1 10.0.0.3 on sw0), so a user's
# ~/.config/netvm/modules.toml or $NETVM_CONFIG does not change what is measured;
# the large-MTU variant adds `mtu = $BIG_MTU` to every [[vunet.stack.interface]].
# The native side runs in a fresh network namespace when possible (root), so the
# host's other sockets and its narrow ephemeral port range stay out of the way.
# The variants alternate within each round. Prints a table of medians in Gbit/s,
# their ratios to the host loopback, and one JSON line last.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-5}
REPS=${REPS:-3}
PORT=${PORT:-5299}
BIG_MTU=${BIG_MTU:-65520}
SERVER_WAIT=${SERVER_WAIT:-0.5}   # seconds between starting a server and its client
if [[ -z "${NETVM:-}" ]]; then
    cargo build --release --quiet
    NETVM=target/release/netvm
fi
# `netvm stack` runs inside the session, where PATH may find another netvm.
NETVM=$(realpath "$(command -v "$NETVM")")
command -v iperf3 >/dev/null || { echo "bench/iperf3.sh needs iperf3" >&2; exit 1; }
export PORT SECONDS_EACH SERVER_WAIT

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pair.sh ADDRESS [LAUNCHER...]: an iperf3 server started as `LAUNCHER iperf3 -s -1`,
# then a client to ADDRESS; prints the receiver's bits per second.
cat >"$tmp/pair.sh" <<'EOF'
addr=$1; shift
"$@" iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
server=$!
sleep "$SERVER_WAIT"
if iperf3 -J -c "$addr" -p "$PORT" -t "$SECONDS_EACH" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "error" in d:
    sys.exit("iperf3: " + d["error"])
print(d["end"]["sum_received"]["bits_per_second"])'
then
    wait
else
    kill "$server" 2>/dev/null
    wait
    exit 1
fi
EOF

cp modules.toml "$tmp/default.toml"
if [[ $BIG_MTU != 0 ]]; then
    # Every stack interface gets `mtu = BIG_MTU` (any mtu it had is dropped).
    awk -v mtu="$BIG_MTU" '
        /^[[:space:]]*\[/ { in_if = ($0 ~ /^[[:space:]]*\[\[vunet\.stack\.interface\]\]/) }
        in_if && /^[[:space:]]*mtu[[:space:]]*=/ { next }
        { print }
        in_if && /^[[:space:]]*\[/ { print "mtu = " mtu }
    ' modules.toml >"$tmp/big-mtu.toml"
    if [[ $(grep -c "^mtu = $BIG_MTU\$" "$tmp/big-mtu.toml") -lt 2 ]]; then
        echo "bench/iperf3.sh: modules.toml has fewer than two [[vunet.stack.interface]]" >&2
        exit 1
    fi
fi

native() {
    if [[ $(id -u) -eq 0 ]] && unshare -n true 2>/dev/null; then
        # shellcheck disable=SC2016
        unshare -n sh -c 'ip link set lo up; exec sh "$0" 127.0.0.1' "$tmp/pair.sh"
    else
        sh "$tmp/pair.sh" 127.0.0.1
    fi
}
same_stack() { "$NETVM" run -c "$tmp/default.toml" --stack lwip0 -- sh "$tmp/pair.sh" 127.0.0.1; }
cross_stack() {   # $1: the configuration
    "$NETVM" run -c "$1" --stack lwip0 -- sh "$tmp/pair.sh" 10.0.0.3 "$NETVM" stack lwip1 --
}

gbps() { awk '{printf "%.2f", $1 / 1e9}'; }
# One measurement: runs "$@", checks it printed a number, prints it in Gbit/s.
measure() {
    local bps
    bps=$("$@") || { echo "bench/iperf3.sh: $* failed" >&2; exit 1; }
    [[ $bps =~ ^[0-9.e+]+$ ]] || { echo "bench/iperf3.sh: $*: no result" >&2; exit 1; }
    gbps <<<"$bps"
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }

host_runs=() same_runs=() cross_runs=() big_runs=()
for ((rep = 0; rep < REPS; rep++)); do
    host_runs+=("$(measure native)")
    same_runs+=("$(measure same_stack)")
    cross_runs+=("$(measure cross_stack "$tmp/default.toml")")
    if [[ $BIG_MTU != 0 ]]; then
        big_runs+=("$(measure cross_stack "$tmp/big-mtu.toml")")
    fi
done

host=$(printf '%s\n' "${host_runs[@]}" | median)
ratio() { awk -v a="$1" -v b="$host" 'BEGIN {printf "%.2f", a / b}'; }
row() {   # $1: label; the rest: the runs
    local label=$1; shift
    local m; m=$(printf '%s\n' "$@" | median)
    printf '%-50s %8s %9s %13s\n' "$label" "$m" "$(ratio "$m")" "$(printf '%s\n' "$@" | minmax)"
}

printf 'single-stream iperf3 TCP, median of %s x %ss\n' "$REPS" "$SECONDS_EACH"
printf '%-50s %8s %9s %13s\n' "" "Gbit/s" "/ host" "runs min-max"
row "host kernel loopback" "${host_runs[@]}"
row "netvm, one stack (lwip0, 127.0.0.1)" "${same_runs[@]}"
row "netvm, lwip0 -> lwip1 via sw0, MTU 1500" "${cross_runs[@]}"
if [[ $BIG_MTU != 0 ]]; then
    row "netvm, lwip0 -> lwip1 via sw0, MTU $BIG_MTU" "${big_runs[@]}"
fi

same=$(printf '%s\n' "${same_runs[@]}" | median)
cross=$(printf '%s\n' "${cross_runs[@]}" | median)
json='"host_loopback_gbps":%s,"netvm_same_stack_gbps":%s,"ratio":%s'
json+=',"netvm_cross_stack_gbps":%s,"cross_stack_ratio":%s'
args=("$host" "$same" "$(ratio "$same")" "$cross" "$(ratio "$cross")")
if [[ $BIG_MTU != 0 ]]; then
    big=$(printf '%s\n' "${big_runs[@]}" | median)
    json+=',"netvm_cross_stack_big_mtu_gbps":%s,"cross_stack_big_mtu_ratio":%s,"big_mtu":%s'
    args+=("$big" "$(ratio "$big")" "$BIG_MTU")
fi
json+=',"reps":%s,"seconds":%s'
args+=("$REPS" "$SECONDS_EACH")
# shellcheck disable=SC2059
printf "{$json}\n" "${args[@]}"
