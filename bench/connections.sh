#!/usr/bin/env bash
# bench/connections.sh: what a TCP connection costs under netvm (issue 16), natively and
# on netvm's stacks, in the same run.
#
# (a) connect+accept+close cycles, timed by bench/connect-cycle.c (mean us per cycle):
#   native, one process:     `connect-cycle loop 127.0.0.1` on the host kernel's loopback;
#   netvm, one process:      the same on lwip0 (a kernel AF_UNIX connection per cycle);
#   native, two processes:   `connect-cycle server` and `client` (connect, read the
#                            server's FIN, close) on the host kernel's loopback;
#   netvm, one stack, two processes: both on lwip0, to 127.0.0.1;
#   netvm, across stacks:    server on lwip1 (`netvm stack lwip1 --`), client on lwip0 to
#                            10.0.0.3, through smoltcp and the switch sw0 (MTU 1500).
# (b) nginx and wrk, a new connection per request (`wrk -H 'Connection: close'`):
#   native (nginx and wrk on the host kernel's loopback), one stack (both on lwip0, to
#   127.0.0.1), across stacks (nginx on lwip1, wrk on lwip0 to 10.0.0.3). nginx serves a
#   600-byte file from a private configuration in a temporary directory: one worker
#   process, sendfile and tcp_nopush on (Debian's defaults), access log off.
#
#   bench/connections.sh                    (builds netvm in release mode first)
#   NETVM=path REPS=3 SECONDS_EACH=3 bench/connections.sh
#   PARTS=a bench/connections.sh            (only the cycles; PARTS=b: only nginx)
#
# Environment (all optional):
#   NETVM=PATH          the netvm to measure (default: build this tree with cargo)
#   REPS=5              rounds; each runs every variant once, in an order that rotates
#   CYCLES=3000         timed cycles per run of (a), after one untimed
#   SECONDS_EACH=5      seconds of each wrk run of (b)
#   WRK_CONNECTIONS=32  wrk's open connections (one thread, -t1)
#   NGINX_WORKERS=1     nginx's worker_processes (a number, or auto)
#   PORT=5301           the cycles' listening port
#   NGINX_PORT=8081     nginx's port (above 1024: no root needed)
#   PARTS="a b"         which parts to run
#
# Works as root or as any user. The netvm variants run with `-c` on a copy of the
# repository's modules.toml, so a user's ~/.config/netvm/modules.toml or $NETVM_CONFIG
# does not change what is measured. As root the native variants run in a fresh network
# namespace (only its loopback up), out of the way of the host's other sockets. Prints
# a table of medians, their ratios to native, the range of the runs and wrk's socket
# errors, then one JSON line with every run. A benchmark, not a test: it judges nothing,
# and exits non-zero only when something fails to build or a run fails.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
export LC_ALL=C
name=connections.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

REPS=${REPS:-5}
CYCLES=${CYCLES:-3000}
PORT=${PORT:-5301}
PARTS=${PARTS:-a b}
positive REPS CYCLES PORT
nginx_wrk_settings
part_a=false part_b=false
for p in $PARTS; do
    case $p in
        a) part_a=true ;;
        b) part_b=true ;;
        *) die "PARTS takes a and b, not '$p'" ;;
    esac
done
if $part_a; then need cc gcc; fi
if $part_b; then
    need nginx nginx-light
    need wrk wrk
fi
netvm_binary

bench_workdir
netvm_run() { "$NETVM" run -c "$tmp/modules.toml" --stack lwip0 -- "$@"; }
cross=("$NETVM" stack lwip1 --) # the launcher that puts a server on lwip1

# rotate N ROUND: the indices 0..N-1, starting at ROUND mod N.
rotate() {
    local i
    for ((i = 0; i < $1; i++)); do echo $(((i + $2) % $1)); done
}

# --- (a) connect+accept+close cycles ----------------------------------------------------
cycle_variants=(native_loop netvm_loop native_pair netvm_pair cross_pair)
if $part_a; then
    cc -O2 -o "$tmp/connect-cycle" "$here/connect-cycle.c" || die "cannot compile connect-cycle.c"
    # cycle-pair.sh ADDRESS [LAUNCHER...]: `LAUNCHER connect-cycle server ADDRESS`, then
    # the client (which waits for it to listen); prints the client's us per cycle.
    cat >"$tmp/cycle-pair.sh" <<'EOF'
addr=$1
shift
"$@" "$CYCLE_BIN" server "$addr" "$PORT" &
"$CYCLE_BIN" client "$addr" "$PORT" "$CYCLES"
status=$?
kill $!
wait
exit $status
EOF
    export CYCLE_BIN=$tmp/connect-cycle PORT CYCLES
    cycle_run() {
        case $1 in
            native_loop) in_fresh_netns "$CYCLE_BIN" loop 127.0.0.1 "$PORT" "$CYCLES" ;;
            netvm_loop) netvm_run "$CYCLE_BIN" loop 127.0.0.1 "$PORT" "$CYCLES" ;;
            native_pair) in_fresh_netns sh "$tmp/cycle-pair.sh" 127.0.0.1 ;;
            netvm_pair) netvm_run sh "$tmp/cycle-pair.sh" 127.0.0.1 ;;
            cross_pair) netvm_run sh "$tmp/cycle-pair.sh" 10.0.0.3 "${cross[@]}" ;;
        esac
    }
    mkdir -p "$tmp/cycles"
    for ((rep = 0; rep < REPS; rep++)); do
        for i in $(rotate ${#cycle_variants[@]} "$rep"); do
            v=${cycle_variants[i]}
            us=$(cycle_run "$v") || die "cycles, $v: failed"
            [[ $us =~ ^[0-9.]+$ ]] || die "cycles, $v: no result ('$us')"
            echo "$us" >>"$tmp/cycles/$v"
        done
    done
fi

# --- (b) nginx + wrk, Connection: close ------------------------------------------------
nginx_variants=(native same cross)
if $part_b; then
    export WRK_CONNECTIONS NGINX_WORKERS NGINX_PORT
    nginx_site "$tmp"
    nginx_wrk_script "$tmp"
    nginx_conf "$tmp" 127.0.0.1 on >"$tmp/local.conf"
    nginx_conf "$tmp" 10.0.0.3 on >"$tmp/cross.conf"
    nginx -t -q -p "$tmp" -e "$tmp/error.log" -c "$tmp/local.conf" ||
        die "nginx refuses the configuration $tmp/local.conf"
    nginx_run() {
        local local_url=http://127.0.0.1:$NGINX_PORT/ header="Connection: close"
        case $1 in
            native) in_fresh_netns sh "$tmp/nginx-wrk.sh" "$tmp/local.conf" "$local_url" "$SECONDS_EACH" "$header" ;;
            same) netvm_run sh "$tmp/nginx-wrk.sh" "$tmp/local.conf" "$local_url" "$SECONDS_EACH" "$header" ;;
            cross) netvm_run sh "$tmp/nginx-wrk.sh" "$tmp/cross.conf" "http://10.0.0.3:$NGINX_PORT/" \
                "$SECONDS_EACH" "$header" "${cross[@]}" ;;
        esac
    }
    for ((rep = 0; rep < REPS; rep++)); do
        for i in $(rotate ${#nginx_variants[@]} "$rep"); do
            wrk_run "${nginx_variants[i]}" nginx_run "${nginx_variants[i]}"
        done
    done
fi

# --- report -----------------------------------------------------------------------------
json=""
if $part_a; then
    declare -A cycle_label=(
        [native_loop]="native, one process (loopback)"
        [netvm_loop]="netvm, one process (lwip0, 127.0.0.1)"
        [native_pair]="native, two processes (loopback)"
        [netvm_pair]="netvm, two processes on lwip0 (127.0.0.1)"
        [cross_pair]="netvm, server lwip1, client lwip0 (10.0.0.3)"
    )
    declare -A cycle_base=([native_loop]=native_loop [netvm_loop]=native_loop
        [native_pair]=native_pair [netvm_pair]=native_pair [cross_pair]=native_pair)
    declare -A cycle_med
    for v in "${cycle_variants[@]}"; do cycle_med[$v]=$(median <"$tmp/cycles/$v"); done
    printf '(a) connect+accept+close cycles: median of %s runs of %s cycles\n' "$REPS" "$CYCLES"
    printf '%-48s %9s %8s %17s\n' "" "us/cycle" "/ native" "runs min-max"
    entries=()
    for v in "${cycle_variants[@]}"; do
        r=$(ratio "${cycle_med[$v]}" "${cycle_med[${cycle_base[$v]}]}")
        printf '%-48s %9s %8s %17s\n' "${cycle_label[$v]}" "${cycle_med[$v]}" "$r" "$(minmax <"$tmp/cycles/$v")"
        mapfile -t runs <"$tmp/cycles/$v"
        entries+=("$(printf '"%s":{"us":%s,"ratio":%s,"runs":%s}' "$v" "${cycle_med[$v]}" "$r" \
            "$(json_list "${runs[@]}")")")
    done
    json+=$(printf '"cycles":{%s},"cycles_per_run":%s,' "$(IFS=,; echo "${entries[*]}")" "$CYCLES")
    $part_b && echo
fi
if $part_b; then
    printf '(b) nginx + wrk -t1 -c%s, Connection: close: median of %s runs of %s s\n' \
        "$WRK_CONNECTIONS" "$REPS" "$SECONDS_EACH"
    wrk_header
    wrk_row "native (loopback)" native native
    wrk_row "netvm, nginx and wrk on lwip0 (127.0.0.1)" same native
    wrk_row "netvm, nginx lwip1, wrk lwip0 (10.0.0.3)" cross native
    wrk_errors "${nginx_variants[@]}"
    json+=$(printf '"nginx_close":{"native":%s,"same":%s,"cross":%s},"seconds":%s,"wrk_connections":%s,"nginx_workers":"%s",' \
        "$(wrk_json native native)" "$(wrk_json same native)" "$(wrk_json cross native)" \
        "$SECONDS_EACH" "$WRK_CONNECTIONS" "$NGINX_WORKERS")
fi
printf '{%s"reps":%s}\n' "$json" "$REPS"
