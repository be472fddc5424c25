#!/usr/bin/env bash
# bench/nginx.sh: nginx serving small files over keep-alive connections (issue 16),
# natively and on netvm's stacks, with tcp_nopush on and off, in the same run.
#
# wrk (`wrk -t1 -c32 -dSECONDS_EACH`, HTTP/1.1 keep-alive: each connection carries
# requests until nginx's keepalive_requests, 1,000 by default) asks nginx for a 600-byte
# file. nginx runs from a private configuration in a temporary directory: one worker
# process, sendfile on (as in Debian's nginx.conf), access log off, and either
# `tcp_nopush on` (Debian's default) or `tcp_nopush off`. For each of the two:
#   native:        nginx and wrk on the host kernel's loopback;
#   one stack:     nginx and wrk on lwip0, to 127.0.0.1 (kernel AF_UNIX connections);
#   across stacks: nginx on lwip1 (`netvm stack lwip1 --`), wrk on lwip0 to 10.0.0.3,
#                  through smoltcp and the switch sw0 (MTU 1500).
#
#   bench/nginx.sh                          (builds netvm in release mode first)
#   NETVM=path REPS=3 SECONDS_EACH=3 bench/nginx.sh
#   NOPUSH=off bench/nginx.sh               (only tcp_nopush off)
#
# Environment (all optional):
#   NETVM=PATH          the netvm to measure (default: build this tree with cargo)
#   REPS=5              rounds; each runs every variant once, in an order that rotates
#   SECONDS_EACH=5      seconds of each wrk run
#   WRK_CONNECTIONS=32  wrk's open connections (one thread, -t1)
#   NGINX_WORKERS=1     nginx's worker_processes (a number, or auto)
#   NGINX_PORT=8081     nginx's port (above 1024: no root needed)
#   NOPUSH="on off"     the tcp_nopush settings to measure
#
# Works as root or as any user. The netvm variants run with `-c` on a copy of the
# repository's modules.toml, so a user's ~/.config/netvm/modules.toml or $NETVM_CONFIG
# does not change what is measured. As root the native variants run in a fresh network
# namespace (only its loopback up). Prints a table of median requests per second, their
# ratios to native with the same tcp_nopush, the range of the runs and wrk's socket
# errors (summed, then wrk's own line for every run that had any), then one JSON line
# with every run. A benchmark, not a test: it judges nothing, and exits non-zero only
# when something fails to build or a run fails.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
export LC_ALL=C
name=nginx.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

REPS=${REPS:-5}
NOPUSH=${NOPUSH:-on off}
positive REPS
nginx_wrk_settings
read -ra nopush <<<"$NOPUSH"
for p in "${nopush[@]}"; do
    [[ $p == on || $p == off ]] || die "NOPUSH takes on and off, not '$p'"
done
[[ ${#nopush[@]} -gt 0 ]] || die "NOPUSH is empty"
need nginx nginx-light
need wrk wrk
netvm_binary

bench_workdir
export WRK_CONNECTIONS NGINX_WORKERS NGINX_PORT
nginx_site "$tmp"
nginx_wrk_script "$tmp"
for p in "${nopush[@]}"; do
    nginx_conf "$tmp" 127.0.0.1 "$p" >"$tmp/local-$p.conf"
    nginx_conf "$tmp" 10.0.0.3 "$p" >"$tmp/cross-$p.conf"
done
nginx -t -q -p "$tmp" -e "$tmp/error.log" -c "$tmp/local-${nopush[0]}.conf" ||
    die "nginx refuses the configuration $tmp/local-${nopush[0]}.conf"

# run WHERE NOPUSH: one nginx and one wrk; prints wrk's output.
run() {
    local script=$tmp/nginx-wrk.sh local_url=http://127.0.0.1:$NGINX_PORT/
    case $1 in
        native) in_fresh_netns sh "$script" "$tmp/local-$2.conf" "$local_url" "$SECONDS_EACH" "" ;;
        same) "$NETVM" run -c "$tmp/modules.toml" --stack lwip0 -- \
            sh "$script" "$tmp/local-$2.conf" "$local_url" "$SECONDS_EACH" "" ;;
        cross) "$NETVM" run -c "$tmp/modules.toml" --stack lwip0 -- \
            sh "$script" "$tmp/cross-$2.conf" "http://10.0.0.3:$NGINX_PORT/" "$SECONDS_EACH" "" \
            "$NETVM" stack lwip1 -- ;;
    esac
}

variants=()
for p in "${nopush[@]}"; do variants+=("native-$p" "same-$p" "cross-$p"); done
n=${#variants[@]}
for ((rep = 0; rep < REPS; rep++)); do
    for ((k = 0; k < n; k++)); do
        v=${variants[(k + rep) % n]}
        wrk_run "$v" run "${v%-*}" "${v##*-}"
    done
done

printf 'nginx + wrk -t1 -c%s, keep-alive, 600-byte file: median of %s runs of %s s\n' \
    "$WRK_CONNECTIONS" "$REPS" "$SECONDS_EACH"
wrk_header
entries=()
for p in "${nopush[@]}"; do
    wrk_row "native (loopback), tcp_nopush $p" "native-$p" "native-$p"
    wrk_row "netvm, nginx and wrk on lwip0, tcp_nopush $p" "same-$p" "native-$p"
    wrk_row "netvm, nginx lwip1, wrk lwip0, tcp_nopush $p" "cross-$p" "native-$p"
    for w in native same cross; do
        entries+=("\"${w}_nopush_$p\":$(wrk_json "$w-$p" "native-$p")")
    done
done
wrk_errors "${variants[@]}"
printf '{%s,"reps":%s,"seconds":%s,"wrk_connections":%s,"nginx_workers":"%s"}\n' \
    "$(IFS=,; echo "${entries[*]}")" "$REPS" "$SECONDS_EACH" "$WRK_CONNECTIONS" "$NGINX_WORKERS"
