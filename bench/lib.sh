# bench/lib.sh: shell helpers of connections.sh, nginx.sh and spawn.sh (sourced, not run).
#
# The sourcing script sets `name` (its name, for messages) and `here` (bench/'s absolute
# path) first, and `tmp` (its temporary directory) before calling the wrk_ helpers.
# Every helper writes only under that directory.
# shellcheck shell=bash disable=SC2154

die() {
    echo "bench/$name: $*" >&2
    exit 1
}

# need TOOL PACKAGE: stops with what to install when TOOL is not on PATH.
need() {
    command -v "$1" >/dev/null || die "needs $1: sudo apt-get install -y $2"
}

# positive VAR...: each variable named must hold a positive integer.
positive() {
    local v
    for v; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
    done
}

# netvm_binary: sets NETVM to an absolute path, building this tree first if NETVM is
# unset (`netvm stack` runs inside the session, where PATH may find another netvm).
netvm_binary() {
    if [[ -z ${NETVM:-} ]]; then
        echo "building netvm (cargo build --release)..." >&2
        cargo build --release --quiet --manifest-path "$here/../Cargo.toml" || die "cargo build failed"
        NETVM=${CARGO_TARGET_DIR:-$here/../target}/release/netvm
    fi
    NETVM=$(realpath "$(command -v "$NETVM")") || die "no netvm at '$NETVM'"
}

# bench_workdir: makes the run's temporary directory `tmp` (removed on exit, readable by
# all: nginx's workers read the site there) with a copy of the repository's modules.toml,
# so that a user's ~/.config/netvm/modules.toml or $NETVM_CONFIG changes nothing measured.
bench_workdir() {
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/netvm-bench.XXXXXX")
    chmod 755 "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    cp "$here/../modules.toml" "$tmp/modules.toml"
}

# in_fresh_netns CMD...: runs CMD natively, in a fresh network namespace with only its
# loopback up when root can make one (so the host's other sockets, TIME_WAIT entries and
# port range stay out of the way), else in the host's own.
in_fresh_netns() {
    if [[ $(id -u) -eq 0 ]] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
        # shellcheck disable=SC2016
        unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
    else
        "$@"
    fi
}

# Statistics on numbers, one a line on standard input.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }
# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# json_list X...: [X,X,...] (numbers, or strings already quoted).
json_list() {
    local IFS=,
    printf '[%s]' "$*"
}

# --- nginx and wrk (connections.sh and nginx.sh) -------------------------------------

# nginx_wrk_settings: the defaults and checks of the knobs connections.sh and nginx.sh share.
nginx_wrk_settings() {
    SECONDS_EACH=${SECONDS_EACH:-5}
    WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
    NGINX_WORKERS=${NGINX_WORKERS:-1}
    NGINX_PORT=${NGINX_PORT:-8081}
    positive SECONDS_EACH WRK_CONNECTIONS NGINX_PORT
    [[ $NGINX_WORKERS =~ ^([1-9][0-9]*|auto)$ ]] || die "NGINX_WORKERS must be a number or auto"
}

# nginx_site DIR: the document root DIR/html, holding index.html of 600 bytes, and the
# temporary directories nginx would otherwise make under /var/lib/nginx.
nginx_site() {
    mkdir -p "$1/html" "$1/temp"
    {
        printf '<!DOCTYPE html>\n<html><head><title>netvm bench</title></head><body>\n'
        printf '%0516d\n' 0 | tr 0 x
        printf '</body></html>\n'
    } >"$1/html/index.html"
    [[ $(wc -c <"$1/html/index.html") -eq 600 ]] || die "index.html is not 600 bytes"
}

# nginx_conf DIR ADDRESS NOPUSH: an nginx.conf on standard output for the site in DIR,
# listening on ADDRESS:$NGINX_PORT, with `tcp_nopush NOPUSH` (on or off). Root keeps its
# workers as root (`user root`): nginx would otherwise switch them to www-data or nobody;
# anyone else runs them as themselves (nginx refuses `user` then).
nginx_conf() {
    local dir=$1 addr=$2 nopush=$3 module
    [[ $(id -u) -eq 0 ]] && echo "user root;"
    cat <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type text/html;
    sendfile on;
    tcp_nopush $nopush;
    client_body_temp_path $dir/temp/body;
EOF
    # Each module compiled in makes its temporary directory at start.
    for module in proxy fastcgi uwsgi scgi; do
        nginx -V 2>&1 | grep -q -- "--without-http_${module}_module" ||
            echo "    ${module}_temp_path $dir/temp/$module;"
    done
    cat <<EOF
    server {
        listen $addr:$NGINX_PORT;
        root $dir/html;
    }
}
EOF
}

# nginx_wrk_script DIR: writes DIR/nginx-wrk.sh, which runs one nginx and one wrk:
#   sh DIR/nginx-wrk.sh CONF URL SECONDS WRK_HEADER [LAUNCHER...]
# starts `LAUNCHER nginx` with CONF, waits for its pid file (nginx writes it once it
# listens), runs `wrk -t1 -c$WRK_CONNECTIONS -dSECONDS` on URL (with `-H WRK_HEADER`
# unless it is empty), stops nginx and prints wrk's output. It runs where the variant
# puts it: natively, or inside a netvm session (LAUNCHER `netvm stack lwip1 --` puts
# nginx on another stack than wrk's).
nginx_wrk_script() {
    cat >"$1/nginx-wrk.sh" <<'EOF'
conf=$1 url=$2 seconds=$3 header=$4
shift 4
dir=$(dirname "$conf")
rm -f "$dir/nginx.pid"
"$@" nginx -p "$dir" -e "$dir/error.log" -c "$conf" &
i=0
while [ ! -s "$dir/nginx.pid" ]; do
    if [ "$i" -ge 100 ] || ! kill -0 $! 2>/dev/null; then
        echo "nginx did not start; its error log:" >&2
        cat "$dir/error.log" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
if [ -n "$header" ]; then
    wrk -t1 -c"$WRK_CONNECTIONS" -d"${seconds}s" -H "$header" "$url"
else
    wrk -t1 -c"$WRK_CONNECTIONS" -d"${seconds}s" "$url"
fi
status=$?
kill "$(cat "$dir/nginx.pid")"
wait
exit $status
EOF
}

# wrk_fields: reads wrk's output, prints "REQUESTS_PER_S CONNECT READ WRITE TIMEOUT
# NON2XX" (the socket errors, zero when wrk printed no "Socket errors:" line), or
# nothing when the output has no "Requests/sec:".
wrk_fields() {
    awk '
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ {
            for (i = 1; i <= NF; i++) { v = $(i + 1); sub(/,$/, "", v); e[$i] = v }
        }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        END {
            if (rps != "")
                printf "%s %d %d %d %d %d\n", rps, e["connect"], e["read"], e["write"], e["timeout"], non2xx
        }'
}

# wrk_run VARIANT CMD...: one measurement. CMD prints wrk's output (see nginx_wrk_script);
# appends "REQUESTS_PER_S CONNECT READ WRITE TIMEOUT NON2XX" to $tmp/runs/VARIANT, and
# wrk's own "Socket errors:" and "Non-2xx" lines, if any, to $tmp/runs/VARIANT.errors.
wrk_run() {
    local variant=$1 out fields n
    shift
    mkdir -p "$tmp/runs"
    out=$("$@" 2>&1) || die "$variant: $* failed:"$'\n'"$out"
    fields=$(wrk_fields <<<"$out")
    [[ -n $fields ]] || die "$variant: no Requests/sec in wrk's output:"$'\n'"$out"
    echo "$fields" >>"$tmp/runs/$variant"
    n=$(wc -l <"$tmp/runs/$variant")
    grep -E 'Socket errors:|Non-2xx' <<<"$out" | sed "s/^ */run $n: /" >>"$tmp/runs/$variant.errors" || true
}

# wrk_median VARIANT: the median requests per second of VARIANT's runs.
wrk_median() { cut -d' ' -f1 "$tmp/runs/$1" | median; }

# wrk_row LABEL VARIANT BASE: a table row: median requests/s, its ratio to BASE's
# median, the runs' range, and the socket errors summed over the runs
# (connect/read/write/timeout).
wrk_row() {
    local m
    m=$(wrk_median "$2")
    printf '%-48s %9.0f %8s %13s %15s\n' "$1" "$m" "$(ratio "$m" "$(wrk_median "$3")")" \
        "$(cut -d' ' -f1 "$tmp/runs/$2" | minmax | awk -F- '{ printf "%.0f-%.0f", $1, $2 }')" \
        "$(awk '{ c += $2; r += $3; w += $4; t += $5 } END { print c "/" r "/" w "/" t }' "$tmp/runs/$2")"
}
wrk_header() {
    printf '%-48s %9s %8s %13s %15s\n' "" "req/s" "/ native" "runs min-max" "errors c/r/w/t"
}

# wrk_errors VARIANT...: wrk's own lines for every run that had socket errors or
# non-2xx responses.
wrk_errors() {
    local v
    for v; do
        [[ -s $tmp/runs/$v.errors ]] && sed "s/^/  $v, /" "$tmp/runs/$v.errors"
    done
    return 0
}

# wrk_json VARIANT BASE: {"rps":MEDIAN,"ratio":R,"runs":[{"rps":..,"connect":..,...}]}
wrk_json() {
    local runs
    runs=$(awk '{ printf "%s{\"rps\":%s,\"connect\":%s,\"read\":%s,\"write\":%s,\"timeout\":%s,\"non2xx\":%s}",
                        (NR > 1 ? "," : ""), $1, $2, $3, $4, $5, $6 }' "$tmp/runs/$1")
    printf '{"rps":%s,"ratio":%s,"runs":[%s]}' "$(wrk_median "$1")" \
        "$(ratio "$(wrk_median "$1")" "$(wrk_median "$2")")" "$runs"
}
