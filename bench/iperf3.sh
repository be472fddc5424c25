#!/usr/bin/env bash
# Single-stream iperf3 TCP throughput, in the same run, for:
#   host:       the host kernel's loopback (native, no netvm);
#   same stack: client and server on one netvm stack (lwip0, 127.0.0.1);
#   cross:      server on lwip1, client on lwip0 to 10.0.0.3, through smoltcp and
#               the virtual switch sw0 (MTU 1500, the default);
#   cross mtu:  the same with both stacks' interfaces at MTU $BIG_MTU;
#   pasta:      the client in pasta's namespace to 127.0.0.1, forwarded (`-T PORT`)
#               to the server on the host's loopback: pasta's splice path, its
#               fastest (needs passt installed, and root; skipped otherwise);
#   slirp4netns: the client in a namespace plugged by `slirp4netns --mtu=65520` (its
#               fastest) into the server's fresh namespace, to 10.0.2.2, which
#               slirp4netns forwards to that namespace's loopback (needs slirp4netns
#               and root; skipped otherwise);
# and iperf3 UDP (`-u -b 0 -l 1460`, datagrams a second that reached the server)
# on the host loopback and across stacks.
#
#   bench/iperf3.sh                  (builds netvm in release mode first)
#   NETVM=path SECONDS_EACH=10 REPS=3 bench/iperf3.sh
#   BIG_MTU=0 bench/iperf3.sh        (skips the large-MTU variant)
#   UDP=0 PASTA=0 SLIRP=0 bench/iperf3.sh   (skips the UDP, pasta and slirp4netns variants)
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
UDP=${UDP:-1}
PASTA=${PASTA:-1}
if [[ $PASTA != 0 ]] && ! { [[ $(id -u) -eq 0 ]] && command -v pasta >/dev/null; }; then
    echo "bench/iperf3.sh: no pasta variant (needs root and pasta: apt-get install passt)" >&2
    PASTA=0
fi
SLIRP=${SLIRP:-1}
if [[ $SLIRP != 0 ]] && ! { [[ $(id -u) -eq 0 ]] && command -v slirp4netns >/dev/null; }; then
    echo "bench/iperf3.sh: no slirp4netns variant (needs root and slirp4netns)" >&2
    SLIRP=0
fi
SERVER_WAIT=${SERVER_WAIT:-0.5}   # seconds between starting a server and its client
if [[ -z "${NETVM:-}" ]]; then
    cargo build --release --quiet
    NETVM=target/release/netvm
fi
# `netvm stack` runs inside the session, where PATH may find another netvm.
NETVM=$(realpath "$(command -v "$NETVM")")
command -v iperf3 >/dev/null || { echo "bench/iperf3.sh needs iperf3" >&2; exit 1; }
export PORT SECONDS_EACH SERVER_WAIT
# MODE=udp makes pair.sh measure UDP datagrams a second instead of TCP bits.
export MODE=tcp

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pair.sh ADDRESS [LAUNCHER...]: an iperf3 server started as `LAUNCHER iperf3 -s -1`,
# then a client to ADDRESS (run as $CLIENT_LAUNCHER iperf3, if set); prints the
# receiver's bits per second (MODE=tcp) or datagrams a second (MODE=udp).
cat >"$tmp/pair.sh" <<'EOF'
addr=$1; shift
"$@" iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
server=$!
sleep "$SERVER_WAIT"
udp=
[ "$MODE" = udp ] && udp="-u -b 0 -l 1460"
# (-J reports errors in its JSON; stderr has only the warning that 1460 > the MSS.)
# shellcheck disable=SC2086
if $CLIENT_LAUNCHER iperf3 -J $udp -c "$addr" -p "$PORT" -t "$SECONDS_EACH" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "error" in d:
    sys.exit("iperf3: " + d["error"])
if sys.argv[1] == "udp":
    s = d["end"]["sum"]
    print((s["packets"] - s["lost_packets"]) / s["seconds"])
else:
    print(d["end"]["sum_received"]["bits_per_second"])' "$MODE"
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
# pasta as root (Debian's passt: --runas 0, or it changes to nobody), its
# namespace's port PORT forwarded to the loopback of a fresh namespace, where the
# server runs. pasta copies that namespace's addresses and routes, so it gets a
# veth with both families' default routes (nothing is ever sent through it).
pasta_splice() {
    local up='ip link set lo up; ip link add v0 type veth peer name v1; ip link set v1 up
        ip link set v0 up; ip addr add 192.0.2.1/24 dev v0; ip route add default via 192.0.2.254
        ip -6 addr add 2001:db8::1/64 dev v0 nodad; ip -6 route add default via 2001:db8::fe'
    CLIENT_LAUNCHER="pasta -q -f --runas 0 --config-net -T $PORT --" \
        unshare -n sh -c "$up"'; exec sh "$0" 127.0.0.1' "$tmp/pair.sh" 2> >(
            grep -Ev 'syslog|uid_map|user mappings|ping_group_range' >&2)
}
# slirp4netns as root: the server's fresh namespace (loopback up) holds, in a
# namespace of its own, a `sleep` that slirp4netns plugs in at MTU 65520; the
# client runs there (nsenter) and reaches the server's loopback as 10.0.2.2.
cat >"$tmp/slirp.sh" <<'SLIRP'
ip link set lo up
own=$(stat -L -c %i /proc/self/ns/net)
unshare -n sleep infinity &
holder=$!
i=0
# Until unshare has run, the holder is still here: slirp4netns would plug this one.
while [ "$(stat -L -c %i "/proc/$holder/ns/net" 2>/dev/null)" = "$own" ] && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
done
slirp4netns --configure --mtu=65520 "$holder" tap0 >/dev/null 2>&1 &
slirp=$!
i=0
until nsenter -t "$holder" -n ip -4 -o addr show dev tap0 2>/dev/null | grep -q 10.0.2.100; do
    [ $i -ge 200 ] && { echo "slirp4netns did not configure tap0" >&2; kill $slirp $holder; exit 1; }
    sleep 0.05; i=$((i + 1))
done
CLIENT_LAUNCHER="nsenter -t $holder -n" sh "$1" 10.0.2.2
status=$?
kill $slirp $holder
wait
exit $status
SLIRP
slirp() { unshare -n sh "$tmp/slirp.sh" "$tmp/pair.sh"; }
same_stack() { "$NETVM" run -c "$tmp/default.toml" --stack lwip0 -- sh "$tmp/pair.sh" 127.0.0.1; }
cross_stack() {   # $1: the configuration
    "$NETVM" run -c "$1" --stack lwip0 -- sh "$tmp/pair.sh" 10.0.0.3 "$NETVM" stack lwip1 --
}

# One measurement: runs "$@", checks it printed a number, prints it in Gbit/s
# (MODE=tcp) or thousands of datagrams a second (MODE=udp).
measure() {
    local rate
    rate=$("$@") || { echo "bench/iperf3.sh: $* failed" >&2; exit 1; }
    [[ $rate =~ ^[0-9.e+]+$ ]] || { echo "bench/iperf3.sh: $*: no result" >&2; exit 1; }
    awk -v unit="$([[ $MODE == udp ]] && echo 1e3 || echo 1e9)" '{printf "%.2f", $1 / unit}' \
        <<<"$rate"
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }

host_runs=() same_runs=() cross_runs=() big_runs=() pasta_runs=() slirp_runs=()
udp_host_runs=() udp_cross_runs=()
for ((rep = 0; rep < REPS; rep++)); do
    MODE=tcp
    host_runs+=("$(measure native)")
    same_runs+=("$(measure same_stack)")
    cross_runs+=("$(measure cross_stack "$tmp/default.toml")")
    if [[ $BIG_MTU != 0 ]]; then
        big_runs+=("$(measure cross_stack "$tmp/big-mtu.toml")")
    fi
    if [[ $PASTA != 0 ]]; then
        pasta_runs+=("$(measure pasta_splice)")
    fi
    if [[ $SLIRP != 0 ]]; then
        slirp_runs+=("$(measure slirp)")
    fi
    if [[ $UDP != 0 ]]; then
        MODE=udp
        udp_host_runs+=("$(measure native)")
        udp_cross_runs+=("$(measure cross_stack "$tmp/default.toml")")
    fi
done

host=$(printf '%s\n' "${host_runs[@]}" | median)
ratio() { awk -v a="$1" -v b="${2:-$host}" 'BEGIN {printf "%.2f", a / b}'; }
row() {   # $1: label; $2: what the ratio is against; the rest: the runs
    local label=$1 against=$2; shift 2
    local m; m=$(printf '%s\n' "$@" | median)
    printf '%-50s %8s %9s %13s\n' "$label" "$m" "$(ratio "$m" "$against")" \
        "$(printf '%s\n' "$@" | minmax)"
}

printf 'single-stream iperf3 TCP, median of %s x %ss\n' "$REPS" "$SECONDS_EACH"
printf '%-50s %8s %9s %13s\n' "" "Gbit/s" "/ host" "runs min-max"
row "host kernel loopback" "$host" "${host_runs[@]}"
row "netvm, one stack (lwip0, 127.0.0.1)" "$host" "${same_runs[@]}"
row "netvm, lwip0 -> lwip1 via sw0, MTU 1500" "$host" "${cross_runs[@]}"
if [[ $BIG_MTU != 0 ]]; then
    row "netvm, lwip0 -> lwip1 via sw0, MTU $BIG_MTU" "$host" "${big_runs[@]}"
fi
if [[ $PASTA != 0 ]]; then
    row "pasta, namespace -> host loopback (splice)" "$host" "${pasta_runs[@]}"
fi
if [[ $SLIRP != 0 ]]; then
    row "slirp4netns, MTU 65520, namespace -> loopback" "$host" "${slirp_runs[@]}"
fi
if [[ $UDP != 0 ]]; then
    udp_host=$(printf '%s\n' "${udp_host_runs[@]}" | median)
    printf '\niperf3 UDP, 1460-byte datagrams, -b 0: thousands received a second\n'
    printf '%-50s %8s %9s %13s\n' "" "k/s" "/ host" "runs min-max"
    row "host kernel loopback" "$udp_host" "${udp_host_runs[@]}"
    row "netvm, lwip0 -> lwip1 via sw0, MTU 1500" "$udp_host" "${udp_cross_runs[@]}"
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
if [[ $PASTA != 0 ]]; then
    pasta=$(printf '%s\n' "${pasta_runs[@]}" | median)
    json+=',"pasta_splice_gbps":%s,"cross_stack_over_pasta":%s'
    args+=("$pasta" "$(ratio "$cross" "$pasta")")
fi
if [[ $SLIRP != 0 ]]; then
    slirp=$(printf '%s\n' "${slirp_runs[@]}" | median)
    json+=',"slirp4netns_gbps":%s,"cross_stack_over_slirp4netns":%s'
    args+=("$slirp" "$(ratio "$cross" "$slirp")")
fi
if [[ $UDP != 0 ]]; then
    udp_cross=$(printf '%s\n' "${udp_cross_runs[@]}" | median)
    json+=',"udp_host_kdgram_s":%s,"udp_cross_stack_kdgram_s":%s,"udp_cross_stack_ratio":%s'
    args+=("$udp_host" "$udp_cross" "$(ratio "$udp_cross" "$udp_host")")
fi
json+=',"reps":%s,"seconds":%s'
args+=("$REPS" "$SECONDS_EACH")
# shellcheck disable=SC2059
printf "{$json}\n" "${args[@]}"
