#!/usr/bin/env bash
# bench/scale.sh: what a large program costs the supervisor, and how the session
# holds up under it (issue: scale without amplification).
#
# Each workload of bench/scale-load.py runs in a fresh session on a copy of the
# repository's modules.toml (lwip0 10.0.0.2 and lwip1 10.0.0.3 on sw0). At each
# point the workload marks (before it opens anything, with everything open, after
# it closed everything) the script reads the supervisor's RSS and open fds
# (/proc/PID/status, /proc/PID/fd), and reports per socket:
#   udp:       N bound UDP sockets on lwip0
#   listen:    N TCP listeners on lwip0
#   tcp-local: N idle TCP connections within lwip0 (echo server on the same stack)
#   tcp-cross: N idle TCP connections lwip0 -> lwip1 (echo server on lwip1)
# with, for the two tcp workloads, the median connect latency and echo round trip
# (64 bytes) with 0, 1,000, 5,000 and N idle connections open (native loopback
# alongside); and cross-stack UDP loss: COUNT datagrams of 1,400 bytes lwip0 ->
# lwip1 at the sender's full speed, beside the same on the host's loopback;
# and a session of STACKS stacks on 4 switches joined by a router (stacks):
# its start-up time (median of 5 runs of `true`), the supervisor's RSS, and the
# ping round trip from the first stack to the second and to the last, beside
# lwip0 -> lwip1 in the built-in three-party network.
#
#   bench/scale.sh                  (builds netvm in release mode first)
#   N=2000 bench/scale.sh           (smaller, quicker)
#   NETVM=path WORKLOADS="udp listen" bench/scale.sh
#
# Figures only: a benchmark, not a test. The last line is one JSON object.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
N=${N:-10000}
N_CROSS=${N_CROSS:-5000}
COUNT=${COUNT:-100000}
STACKS=${STACKS:-1000}
WORKLOADS=${WORKLOADS:-udp listen tcp-local tcp-cross udp-loss stacks}
if [[ -z ${NETVM:-} ]]; then
    cargo build --release --quiet --manifest-path "$here/../Cargo.toml"
    NETVM="$here/../target/release/netvm"
fi
NETVM=$(realpath "$NETVM")
LOAD="$here/scale-load.py"
ulimit -n "$(ulimit -Hn)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One process holds all the connections of a workload: let it hold more than
# its default share of the supervisor's descriptors (a quarter of its limit).
sed 's/^default = "lwip0"$/&\ndescriptors-per-process = 1000000/' "$here/../modules.toml" \
    >"$tmp/modules.toml"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

# measure NAME SOCKETS COMMAND...: runs COMMAND (a netvm run), samples its
# supervisor at each mark, and prints one JSON object for the workload.
measure() {
    local name=$1 sockets=$2
    shift 2
    local line results=() marks=()
    coproc LOADED { exec "$@"; }
    local pid=$LOADED_PID
    while IFS= read -r -u "${LOADED[0]}" line; do
        case $line in
            MARK\ *)
                marks+=("\"${line#MARK }\":{\"rss_kb\":$(rss_kb "$pid"),\"fds\":$(fds "$pid")}")
                echo go >&"${LOADED[1]}"
                ;;
            RESULT\ *) results+=("${line#RESULT }") ;;
        esac
    done
    wait "$pid" || true
    local joined_marks joined_results
    joined_marks=$(IFS=,; echo "${marks[*]}")
    joined_results=$(IFS=,; echo "${results[*]}")
    echo "{\"workload\":\"$name\",\"sockets\":$sockets,\"marks\":{$joined_marks},\"results\":[$joined_results]}"
}

session=("$NETVM" run -c "$tmp/modules.toml" --)

# ping_avg_ms CONFIG STACK ADDRESS: the mean round trip of 20 pings, in ms.
ping_avg_ms() {
    "$NETVM" run -c "$1" --stack "$2" -- ping -q -c 20 -i 0.05 "$3" |
        awk -F/ '/^rtt/ { print $5 }'
}

# many_stacks: one JSON object for the session of $STACKS stacks.
many_stacks() {
    local config="$tmp/stacks.toml" last starts=() rss
    last=$(python3 "$LOAD" stacks-config "$STACKS" 4 2>&1 >"$config")
    for _ in 1 2 3 4 5; do
        local start=$EPOCHREALTIME
        "$NETVM" run -c "$config" --stack h0 -- true
        starts+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
    rss=$(measure rss "$STACKS" "$NETVM" run -c "$config" --stack h0 -- python3 "$LOAD" idle |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["marks"]["start"]["rss_kb"])')
    local start_ms
    start_ms=$(printf '%s\n' "${starts[@]}" | sort -n | sed -n 3p)
    local first last_ms builtin
    first=$(ping_avg_ms "$config" h0 10.0.0.4)
    last_ms=$(ping_avg_ms "$config" h0 "$last")
    builtin=$(ping_avg_ms "$tmp/modules.toml" lwip0 10.0.0.3)
    echo "{\"workload\":\"stacks\",\"sockets\":$STACKS,\"marks\":{},\"results\":[{\"start_ms\":$start_ms,\"rss_kb\":$rss,\"ping_first_two_ms\":$first,\"ping_first_last_ms\":$last_ms,\"ping_builtin_ms\":$builtin}]}"
}

all=()
for workload in $WORKLOADS; do
    case $workload in
        udp) all+=("$(measure udp "$N" "${session[@]}" python3 "$LOAD" udp "$N" 10.0.0.2)") ;;
        listen) all+=("$(measure listen "$N" "${session[@]}" python3 "$LOAD" listen "$N" 10.0.0.2)") ;;
        tcp-local)
            all+=("$(measure tcp-local "$N" "${session[@]}" python3 "$LOAD" tcp "$N" 10.0.0.2)")
            all+=("$(measure tcp-native "$N" python3 "$LOAD" tcp "$N" 127.0.0.1)")
            ;;
        tcp-cross)
            all+=("$(measure tcp-cross "$N_CROSS" "${session[@]}" python3 "$LOAD" tcp "$N_CROSS" 10.0.0.3 \
                "$NETVM stack lwip1 --")")
            ;;
        udp-loss)
            all+=("$(measure udp-loss-cross "$COUNT" "${session[@]}" python3 "$LOAD" udp-loss "$COUNT" 1400 \
                10.0.0.3 "$NETVM stack lwip1 --")")
            all+=("$(measure udp-loss-native "$COUNT" python3 "$LOAD" udp-loss "$COUNT" 1400 127.0.0.1)")
            ;;
        stacks) all+=("$(many_stacks)") ;;
        *) echo "unknown workload $workload" >&2; exit 2 ;;
    esac
done

python3 - "${all[@]}" <<'EOF'
import json, sys
rows = [json.loads(a) for a in sys.argv[1:]]
for row in rows:
    marks, n = row["marks"], row["sockets"]
    line = f'{row["workload"]:<16} {n:>7}'
    if "start" in marks and "open" in marks:
        start, opened = marks["start"], marks["open"]
        per_kb = (opened["rss_kb"] - start["rss_kb"]) / n
        per_fd = (opened["fds"] - start["fds"]) / n
        line += f'  RSS {start["rss_kb"]/1024:.1f} -> {opened["rss_kb"]/1024:.1f} MB'
        line += f' ({per_kb*1024:.0f} B/socket), fds +{per_fd:.2f}/socket'
        if "closed" in marks:
            back = marks["closed"]["rss_kb"]
            line += f', after close {back/1024:.1f} MB ({(back/start["rss_kb"]-1)*100:+.0f}%)'
    print(line)
    for r in row["results"]:
        print("   ", "  ".join(f"{k}={v}" for k, v in r.items()))
print(json.dumps({r["workload"]: r for r in rows}, separators=(",", ":")))
EOF
