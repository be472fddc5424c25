#!/usr/bin/env bash
# The uplink against its peers: single-stream TCP throughput and the connection
# rate from a network namespace out to "the internet", in the same run, for:
#   native:          the client directly in H (no NAT: the ceiling);
#   pasta:           `pasta --config-net -- CLIENT` in H (passt's namespace mode);
#   slirp4netns:     CLIENT in a namespace held by `unshare -n sleep`, plugged into H
#                    by `slirp4netns --configure --disable-host-loopback`, with
#                    --mtu=65520 and with --mtu=1500 (two variants);
#   netvm:           `netvm run -- CLIENT` in H on netvm's built-in network (lwip0 ->
#                    router gw -> uplink `host`, every link at MTU 1500), whose uplink
#                    carries the flow on a socket of its own in H.
# Every NAT makes its host sockets in H, so all of them leave H the same way.
#
#   sudo bench/uplink.sh                 (builds netvm in release mode first)
#   sudo REPS=3 SECONDS_EACH=3 bench/uplink.sh
#   sudo NETVM_BIN=/usr/local/bin/netvm VARIANTS="native netvm" bench/uplink.sh
#
# Needs root (it makes two network namespaces, as tests/common/world.rs does):
#
#   H (the host netvm runs on)                   W (the internet)
#   192.0.2.1/24, 2001:db8::1/64  eth0 --- eth0  192.0.2.2/24, 2001:db8::2/64
#   default routes via W                         iperf3 -s, uplink-connect server
#
# with names unique to the run; on exit it kills what it started and removes them.
# Each round measures every variant in turn (the order rotates from round to round):
#   up:      `iperf3 -c 192.0.2.2 -t SECONDS_EACH` (the client sends), the receiver's
#            figure;
#   down:    the same with -R (the server in W sends);
#   connect: bench/uplink-connect.c's client for CONNECT_SECONDS: connect, read to
#            the server's FIN (the server in W closes at once), close, repeat;
#            successful connections per second.
# A measurement that fails or times out is reported (with the program's own words)
# and left out of the medians; a variant whose program is missing or cannot start
# here is skipped with the reason. Prints the versions, a table of medians with
# their ratios to native, and one JSON line last.
#
# Packages beyond the README's list: passt (pasta), slirp4netns. Knobs: REPS (5),
# SECONDS_EACH (5), CONNECT_SECONDS (5), VARIANTS (all: native pasta slirp65520
# slirp1500 netvm), NETVM_BIN (or NETVM; default: cargo build --release and
# target/release/netvm), PORT (5201) and CONNECT_PORT (5202) in W.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
SECONDS_EACH=${SECONDS_EACH:-5}
CONNECT_SECONDS=${CONNECT_SECONDS:-5}
PORT=${PORT:-5201}
CONNECT_PORT=${CONNECT_PORT:-5202}
VARIANTS=${VARIANTS:-native pasta slirp65520 slirp1500 netvm}
SERVER=192.0.2.2   # W's address, where its servers listen

die() { echo "bench/uplink.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (it makes network namespaces)"
for tool in ip ss nsenter unshare timeout iperf3 cc python3; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

NETVM_BIN=${NETVM_BIN:-${NETVM:-}}
if [[ -z $NETVM_BIN ]]; then
    cargo build --release --quiet
    NETVM_BIN=target/release/netvm
fi
NETVM_BIN=$(realpath "$(command -v "$NETVM_BIN")")

# --- the world, and cleaning it up --------------------------------------------------

H=nvup$$h   # names unique to this run (the pid), as world.rs does
W=nvup$$w
tmp=$(mktemp -d)
started=()  # pids of the long-lived processes this script starts (never reaped
            # before the end, so their pids cannot go to another process)
current=""  # the measurement under way (a timeout(1) leading its process group)
iperf_server=""  # the iperf3 server of the measurement under way

cleanup() {
    set +e
    local pid
    # timeout(1) passes the signal on to its whole process group.
    [[ -n $current ]] && kill "$current" 2>/dev/null && wait "$current" 2>/dev/null
    for pid in $iperf_server "${started[@]}"; do kill "$pid" 2>/dev/null; done
    # Anything still in the run's own namespaces is ours too (a client a timeout
    # left behind); a namespace lives on while a process is in it.
    for ns in "$H" "$W"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    done
    for pid in $iperf_server "${started[@]}"; do wait "$pid" 2>/dev/null; done
    ip netns del "$H" 2>/dev/null
    ip netns del "$W" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Left by a killed run that had the same pid: no live run can have it.
ip netns del "$H" 2>/dev/null || true
ip netns del "$W" 2>/dev/null || true
ip netns add "$H"
ip netns add "$W"
ip link add eth0 netns "$H" type veth peer name eth0 netns "$W"
for ns in "$H" "$W"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done
ip -n "$H" addr add 192.0.2.1/24 dev eth0
ip -n "$H" addr add 2001:db8::1/64 dev eth0 nodad
ip -n "$W" addr add 192.0.2.2/24 dev eth0
ip -n "$W" addr add 2001:db8::2/64 dev eth0 nodad
ip -n "$H" route add default via 192.0.2.2
ip -n "$H" -6 route add default via 2001:db8::2

# Waits (up to 10 s) until something listens on TCP port $1 in W.
wait_listen() {
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -n $(ss -N "$W" -Hltn "sport = :$1") ]] && return 0
        sleep 0.05
    done
    return 1
}

cc -O2 -Wall -o "$tmp/uplink-connect" bench/uplink-connect.c
ip netns exec "$W" "$tmp/uplink-connect" server "$CONNECT_PORT" &
started+=("$!")
wait_listen "$CONNECT_PORT" || die "the connect server in W did not start"

# The netvm variant runs on the binary's built-in network (its copy of modules.toml,
# which matches it even when NETVM_BIN is another build): no NETVM_CONFIG, an empty
# XDG_CONFIG_HOME (so no ~/.config/netvm/modules.toml), and no NETVM_NO_UPLINK. Only
# /etc/netvm/modules.toml would still come first; the probe below checks with
# `netvm stacks`.
mkdir "$tmp/xdg"
NETVM_ENV=(env -u NETVM_CONFIG -u NETVM_NO_UPLINK XDG_CONFIG_HOME="$tmp/xdg")

# --- the variants -----------------------------------------------------------------------

# slirp4netns: a holder process in a network namespace of its own, made in H, and
# slirp4netns (running in H, so its sockets are H's) plugged into it. Sets
# slirp_holder[MTU] to the holder's pid.
declare -A slirp_holder
start_slirp() {   # $1: the MTU
    local mtu=$1 holder i h_ns
    ip netns exec "$H" unshare -n sleep infinity &
    holder=$!
    started+=("$holder")
    # Until unshare has run, the holder is still in H: slirp4netns would plug H itself.
    h_ns=$(stat -L -c %i "/run/netns/$H")
    for ((i = 0; i < 100; i++)); do
        [[ $(stat -L -c %i "/proc/$holder/ns/net" 2>/dev/null) != "$h_ns" ]] && break
        sleep 0.05
    done
    ip netns exec "$H" slirp4netns --configure --mtu="$mtu" --disable-host-loopback \
        "$holder" tap0 >"$tmp/slirp$mtu.log" 2>&1 &
    started+=("$!")
    for ((i = 0; i < 200; i++)); do
        if nsenter -t "$holder" -n ip -4 -o addr show dev tap0 2>/dev/null | grep -q 10.0.2.100; then
            slirp_holder[$mtu]=$holder
            return 0
        fi
        sleep 0.05
    done
    echo "slirp4netns --mtu=$mtu did not configure tap0:" >&2
    cat "$tmp/slirp$mtu.log" >&2
    return 1
}

# What pasta prints every time it runs as root in a network namespace (it cannot
# map users in the namespace it makes, has no syslog here): noise, not errors.
pasta_noise='syslog|uid_map|user mappings|ping_group_range'
# pasta (Debian's passt 0.0~git20230309) as root: --runas 0, or it changes to nobody
# and the command never runs; -f, or it goes to the background when started from a
# terminal; --no-map-gw, or the gateway's address (W's, the server's) is mapped to
# H's own loopback, where nothing listens and the client hangs.
PASTA=(pasta -q -f --runas 0 --no-map-gw --config-net --)

# run_in VARIANT LIMIT CMD...: runs CMD on VARIANT's network, killed after LIMIT
# seconds (timeout(1) signals its whole process group). It runs in the background
# while the script waits for it: bash runs a trap (Ctrl-C) at once during `wait`,
# but only after a foreground command ends.
run_in() {
    local rc=0
    on_network "$@" &
    current=$!
    wait "$current" || rc=$?
    current=""
    return "$rc"
}
# on_network VARIANT LIMIT CMD...: becomes (exec) the timeout(1) running CMD, so that
# run_in's $! is the timeout.
on_network() {
    local variant=$1 limit=$2
    shift 2
    local t=(timeout -k 5 "$limit")
    case $variant in
        native) exec "${t[@]}" ip netns exec "$H" "$@" ;;
        pasta) exec "${t[@]}" ip netns exec "$H" "${PASTA[@]}" "$@" ;;
        slirp65520) exec "${t[@]}" nsenter -t "${slirp_holder[65520]}" -n "$@" ;;
        slirp1500) exec "${t[@]}" nsenter -t "${slirp_holder[1500]}" -n "$@" ;;
        netvm)
            exec "${t[@]}" ip netns exec "$H" "${NETVM_ENV[@]}" "$NETVM_BIN" run -- "$@"
            ;;
    esac
}

declare -A label=(
    [native]="native (client in H)"
    [pasta]="pasta --config-net"
    [slirp65520]="slirp4netns --mtu=65520"
    [slirp1500]="slirp4netns --mtu=1500"
    [netvm]="netvm run (built-in network, MTU 1500)"
)

# Which variants can run here: each is tried once with `true` (slirp4netns started).
variants=()
for v in $VARIANTS; do
    [[ -n ${label[$v]:-} ]] || die "unknown variant $v (known: ${!label[*]})"
    why=""
    case $v in
        pasta) command -v pasta >/dev/null || why="no pasta (apt-get install passt)" ;;
        slirp*)
            if ! command -v slirp4netns >/dev/null; then
                why="no slirp4netns (apt-get install slirp4netns)"
            elif ! start_slirp "${v#slirp}"; then
                why="slirp4netns did not start (above)"
            fi
            ;;
        netvm)
            stacks=$("${NETVM_ENV[@]}" "$NETVM_BIN" stacks 2>&1) || true
            if [[ ${stacks%%$'\n'*} != "configuration: (built-in modules.toml)" ]]; then
                why="it would not use its built-in network: ${stacks%%$'\n'*}"
            fi
            ;;
    esac
    if [[ -z $why ]] && ! run_in "$v" 30 true 2>"$tmp/probe.err"; then
        why="\`true\` failed: $(grep -Ev "$pasta_noise" "$tmp/probe.err" | tail -3 | tr '\n' ' ')"
    fi
    if [[ -n $why ]]; then
        echo "skipping ${label[$v]}: $why" >&2
    else
        variants+=("$v")
    fi
done
[[ ${#variants[@]} -gt 0 ]] || die "no variant can run"

# --- versions -----------------------------------------------------------------------------

pasta_version=""
if command -v pasta >/dev/null; then
    pasta_version=$(pasta --version 2>/dev/null | head -1)
    # Debian's build says "pasta unknown version": the package's version says more.
    pkg=$(dpkg-query -W -f '${Version}' passt 2>/dev/null || true)
    [[ -n $pkg ]] && pasta_version+=" (passt $pkg)"
fi
slirp_version=$(slirp4netns --version 2>/dev/null | paste -sd ' ' || true)
iperf_version=$(iperf3 --version | head -1)
netvm_version="$("$NETVM_BIN" --version 2>/dev/null | head -1)"
if [[ $NETVM_BIN == "$PWD/target/release/netvm" ]]; then   # built from this tree
    netvm_version+=", tree at $(git rev-parse --short HEAD 2>/dev/null || echo "?")"
    git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null ||
        netvm_version+=" plus uncommitted changes"
fi
echo "kernel:      $(uname -r), $(nproc) CPUs"
echo "pasta:       ${pasta_version:-absent}"
echo "slirp4netns: ${slirp_version:-absent}"
echo "iperf3:      $iperf_version"
echo "netvm:       $NETVM_BIN ($netvm_version)"
echo

# --- the measurements ---------------------------------------------------------------------

mkdir "$tmp/results"   # one file per variant and measure, one line per round

# Prints the stderr of a failed measurement, less pasta's noise.
explain() {   # $1: what failed; $2: the file with its stderr
    echo "  $1 failed: $(grep -Ev "$pasta_noise" "$2" | tail -5 | tr '\n' ' ')" >&2
}

# iperf VARIANT up|down: one iperf3 test against a fresh `iperf3 -s -1` in W; appends
# the receiver's Gbit/s (or "fail") to the results.
iperf() {
    local v=$1 dir=$2 result reverse=()
    [[ $dir == down ]] && reverse=(-R)
    ip netns exec "$W" iperf3 -s -1 -p "$PORT" >/dev/null 2>&1 &
    iperf_server=$!
    wait_listen "$PORT" || die "iperf3 -s did not start in W"
    run_in "$v" $((SECONDS_EACH + 30)) \
        iperf3 -J -c "$SERVER" -p "$PORT" -t "$SECONDS_EACH" "${reverse[@]}" \
        >"$tmp/iperf.json" 2>"$tmp/err" || true
    result=$(python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("no JSON from iperf3 (killed after its time limit?)")
if "error" in d:
    sys.exit("iperf3: " + d["error"])
print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$tmp/iperf.json" \
        2>>"$tmp/err") || { explain "${label[$v]}, $dir" "$tmp/err"; result=fail; }
    # The server ends with its test; one a failed client left waiting does not.
    for _ in {1..20}; do kill -0 "$iperf_server" 2>/dev/null || break; sleep 0.1; done
    kill "$iperf_server" 2>/dev/null || true
    wait "$iperf_server" 2>/dev/null || true
    iperf_server=""
    echo "$result" >>"$tmp/results/$v.$dir"
}

# connrate VARIANT: CONNECT_SECONDS of connect-and-close; appends connections per
# second (or "fail") to the results.
connrate() {
    local v=$1 ok="" failed="" elapsed=""
    run_in "$v" $((CONNECT_SECONDS + 30)) \
        "$tmp/uplink-connect" client "$SERVER" "$CONNECT_PORT" "$CONNECT_SECONDS" \
        >"$tmp/connect.out" 2>"$tmp/err" || true
    read -r ok failed elapsed <"$tmp/connect.out" || true
    if [[ $ok =~ ^[0-9]+$ ]]; then
        [[ $failed == 0 ]] || explain "${label[$v]}, connect ($failed attempts)" "$tmp/err"
        awk -v n="$ok" -v s="$elapsed" 'BEGIN {printf "%.0f\n", n / s}' >>"$tmp/results/$v.connect"
    else
        explain "${label[$v]}, connect" "$tmp/err"
        echo fail >>"$tmp/results/$v.connect"
    fi
}

n=${#variants[@]}
for ((round = 0; round < REPS; round++)); do
    for ((i = 0; i < n; i++)); do
        v=${variants[(round + i) % n]}
        iperf "$v" up
        iperf "$v" down
        connrate "$v"
        printf 'round %d/%d %-40s up %s  down %s Gbit/s  %s conn/s\n' $((round + 1)) "$REPS" \
            "${label[$v]}" "$(tail -1 "$tmp/results/$v.up")" \
            "$(tail -1 "$tmp/results/$v.down")" "$(tail -1 "$tmp/results/$v.connect")" >&2
    done
done

# --- the summary --------------------------------------------------------------------------

args=()
for v in "${variants[@]}"; do args+=("$v" "${label[$v]}"); done
python3 - "$tmp/results" "$REPS" "$SECONDS_EACH" "$CONNECT_SECONDS" \
    "$(uname -r)" "$pasta_version" "$slirp_version" "$iperf_version" "$netvm_version" \
    "${args[@]}" <<'PY'
import json, statistics, sys
results, reps, secs, csecs, kernel, pasta, slirp, iperf, netvm = sys.argv[1:10]
rest = sys.argv[10:]
variants = list(zip(rest[::2], rest[1::2]))

def runs(v, measure):
    with open(f"{results}/{v}.{measure}") as f:
        return [line.strip() for line in f]

def median(values):
    ok = [float(x) for x in values if x != "fail"]
    return statistics.median(ok) if ok else None

# (results file, JSON name of the median; its runs and ratio to native are NAME_runs
# and NAME_ratio with the unit dropped)
MEASURES = (("up", "up_gbps"), ("down", "down_gbps"), ("connect", "connects_per_s"))
def prefix(key):
    return key.split("_")[0]

summary = {}
for v, _ in variants:
    s = summary[v] = {}
    for measure, key in MEASURES:
        r = runs(v, measure)
        s[key] = median(r)
        s[prefix(key) + "_runs"] = [None if x == "fail" else float(x) for x in r]
    s["failed"] = sum(x == "fail" for m, _ in MEASURES for x in runs(v, m))

native = summary.get("native", {})
ratios = {}   # unrounded, for the table
for v, _ in variants:
    for _, key in MEASURES:
        a, b = summary[v][key], native.get(key)
        r = ratios[v, key] = a / b if a is not None and b else None
        summary[v][prefix(key) + "_ratio"] = None if r is None else round(r, 3)

def cell(v, key, fmt):
    value, r = summary[v][key], ratios[v, key]
    if value is None:
        return f"{'failed':>8} {'':>7}"
    return f"{value:>8{fmt}} {('(%.2f)' % r) if r is not None else '':>7}"

print(f"medians of {reps} rounds: iperf3 single stream {secs} s each way, "
      f"connect-and-close {csecs} s; in brackets: x native")
print(f"{'':42} {'up Gbit/s':>16} {'down Gbit/s':>16} {'connects/s':>16} {'failed':>6}")
for v, name in variants:
    print(f"{name:42} {cell(v, 'up_gbps', '.2f')} {cell(v, 'down_gbps', '.2f')} "
          f"{cell(v, 'connects_per_s', '.0f')} {summary[v]['failed']:>6}")
print(json.dumps({"variants": summary, "reps": int(reps), "seconds": int(secs),
                  "connect_seconds": int(csecs), "kernel": kernel, "pasta": pasta,
                  "slirp4netns": slirp, "iperf3": iperf, "netvm": netvm},
                 separators=(",", ":")))
PY
