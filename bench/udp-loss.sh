#!/usr/bin/env bash
# UDP datagram loss under iperf3's 1 Gbit/s load, in the same run, for:
#   host:   the host kernel's loopback (native, in a fresh network namespace as root);
#   cross:  server on lwip1, client on lwip0 to 10.0.0.3, through smoltcp and the
#           virtual switch sw0 (MTU 1500: datagrams larger than 1,472 bytes travel
#           in fragments and are put together again);
# with iperf3's default datagram size (which follows the control connection's
# TCP_MAXSEG: 32 KB over the host loopback, 1,448 bytes across stacks at MTU
# 1500), with 1,448-byte datagrams on both (the size-matched comparison), and
# with 32 KB datagrams (-l 32K).
#
#   bench/udp-loss.sh                     (builds netvm in release mode first)
#   NETVM=path SECONDS_EACH=5 REPS=5 RATE=1G bench/udp-loss.sh
#
# The goal (issue 15): loss across stacks within twice the host loopback's in the
# same run. Prints one line per variant (median loss in percent over REPS rounds,
# datagrams received per second) and one JSON line last.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-3}
REPS=${REPS:-3}
RATE=${RATE:-1G}
PORT=${PORT:-5301}
if [[ -z "${NETVM:-}" ]]; then
    cargo build --release --quiet
    NETVM=target/release/netvm
fi
NETVM=$(realpath "$(command -v "$NETVM")")
command -v iperf3 >/dev/null || { echo "bench/udp-loss.sh needs iperf3" >&2; exit 1; }
export PORT SECONDS_EACH RATE

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp modules.toml "$tmp/default.toml"

# pair.sh ADDRESS LENGTH [LAUNCHER...]: an iperf3 server started as
# `LAUNCHER iperf3 -s -1`, then a UDP client to ADDRESS with datagrams of LENGTH
# ("default" for iperf3's own); prints "LOST_PERCENT PACKETS_PER_SECOND".
cat >"$tmp/pair.sh" <<'EOF'
addr=$1 length=$2; shift 2
"$@" iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
sleep 0.5
size=(); [ "$length" = default ] || size=(-l "$length")
iperf3 -J -u -b "$RATE" "${size[@]}" -c "$addr" -p "$PORT" -t "$SECONDS_EACH" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "error" in d:
    sys.exit("iperf3: " + d["error"])
s = d["end"]["sum"]
print(s["lost_percent"], (s["packets"] - s["lost_packets"]) / s["seconds"])'
wait
EOF

native() {
    if [[ $(id -u) -eq 0 ]] && unshare -n true 2>/dev/null; then
        unshare -n sh -c 'ip link set lo up; exec bash "$0" 127.0.0.1 "$1"' "$tmp/pair.sh" "$1"
    else
        bash "$tmp/pair.sh" 127.0.0.1 "$1"
    fi
}
cross() {
    "$NETVM" run -c "$tmp/default.toml" -- bash "$tmp/pair.sh" 10.0.0.3 "$1" "$NETVM" stack lwip1 --
}

declare -A results
for ((round = 0; round < REPS; round++)); do
    for length in default 1448 32K; do
        results[host-$length]+="$(native "$length");"
        results[cross-$length]+="$(cross "$length");"
    done
done

args=()
for key in "${!results[@]}"; do args+=("$key=${results[$key]}"); done
python3 - "$RATE" "${args[@]}" <<'PY'
import json, statistics, sys
rate = sys.argv[1]
runs = {key: [tuple(map(float, r.split())) for r in rounds.split(";") if r]
        for key, rounds in (a.split("=", 1) for a in sys.argv[2:])}
summary = {}
for key in sorted(runs):
    loss = statistics.median(r[0] for r in runs[key])
    pps = statistics.median(r[1] for r in runs[key])
    summary[key] = {"lost_percent": loss, "received_per_second": pps}
for length in ("default", "1448", "32K"):
    host, cross = summary[f"host-{length}"], summary[f"cross-{length}"]
    print(f"{length:>8} datagrams at {rate}: host loopback lost {host['lost_percent']:.2f}% "
          f"({host['received_per_second']:.0f}/s), across stacks lost {cross['lost_percent']:.2f}% "
          f"({cross['received_per_second']:.0f}/s)")
print(json.dumps(summary))
PY
