#!/usr/bin/env bash
# Proxy benchmark (SPEC §10): tlsfront, haproxy and nginx side by side, one
# worker each, pinned to core 0; the load generator (bench_loadgen, wolfSSL)
# and the backend (bench_backend) on core 1, everything on loopback. Cases:
#   ecdsa   TLS 1.3 full handshakes, ECDSA P-256 certificate, X25519, one
#           HTTP/1.1 request each
#   rsa     the same with an RSA-2048 certificate
#   resume  TLS 1.3 resumed handshakes (tickets, psk_dhe_ke), ECDSA, one request each
#   rate    (not run by default) part load: as ecdsa, but the load generator
#           offers RATE new connections a second on a fixed schedule (open
#           loop, at most RATE_CONNS in flight) instead of saturating the
#           proxy; handshakes per proxy CPU-second at that rate, and below the
#           table each proxy's CPU per handshake at RATE against saturated
#           (ecdsa, when run too)
#   idle    memory per idle TLS connection: a fresh proxy, IDLE connections
#           (handshake and one keep-alive request each), VmRSS delta / IDLE
#   spread  (not run by default) as ecdsa, with SNI spread over SPREAD
#           certificates; compare with ecdsa (SPEC: within 5%). Not nginx.
#   keepalive (not run by default) 1 KiB responses, requests one after the
#           other on CONNS keep-alive connections: requests per second and per
#           CPU-second, p50 and p99 latency in the second table
#   bulk    (not run by default) 1 MiB responses on BULK_CONNS keep-alive
#           connections: MB per second and per CPU-second
#   h2      (not run by default) HTTP/2 (SPEC §10, §12): h2load, H2_REQUESTS
#           requests of 1 KiB responses over H2_CONNS connections with
#           H2_STREAMS streams each in flight (ALPN h2; haproxy `mode http`
#           with `alpn h2,http/1.1`, nginx `listen ... ssl http2`, tlsfront
#           `http2: {enabled: true}`): requests per second and per CPU-second
#   h2idle  (not run by default) memory per idle HTTP/2 connection after one
#           finished stream: as idle, over ALPN h2 (bench_loadgen --h2)
#   routes1, routes50 (not run by default; tlsfront only) keepalive's load on
#           `GET /app/r37/item?x=1`, the tenant with one route (routes1) or
#           with 50 path routes, cookie stickiness and header rules both ways
#           (routes50; the request matches the 38th route): SPEC §10 wants
#           routes50 within 5% of routes1 per CPU-second
# Every figure is the median of REPEAT runs and is given as throughput and as
# work per proxy CPU-second (the proxy's utime+stime from /proc/PID/stat).
# haproxy runs `mode tcp` (TLS-terminating; `mode http` for keepalive and bulk,
# where parsing HTTP is the work measured), nginx `proxy_pass` over HTTP/1.1
# keep-alive, tlsfront its default HTTP mode; a proxy that does not start (or
# is not installed) gets n/a and the others still run.
#
#   bench/load/run.sh [BUILD_DIR]
#   REPEAT=3 DURATION=10 (s per run)  CONNS=50 (in flight)  IDLE=2000  SPREAD=10000
#   ROUNDS=1 (ROUNDS=N: the proxies take turns N times, REPEAT runs each per turn)
#   BULK_CONNS=8
#   H2_REQUESTS=200000 H2_CONNS=50 H2_STREAMS=10 (the h2 case: h2load -n -c -m)
#   RATE=1200 (the rate case: new connections offered per second; about half of
#           haproxy's saturated ECDSA rate on the machines of docs/PERFORMANCE.md)
#   RATE_CONNS=400 (the rate case: the most in flight; a due connection with
#           no free slot is missed= in the raw results)
#   PROXIES="tlsfront haproxy nginx"
#   CASES="ecdsa rsa resume idle" (all: "ecdsa rsa resume rate spread keepalive bulk h2 idle h2idle")
#   IDLE_REQUEST=1 (0: idle connections get the handshake only)
#   TLSFRONT=BUILD_DIR/proxy/tlsfront (the binary measured)
#   TLSFRONT_BASE=PATH with PROXIES="tlsfront tlsfront_base ...": another
#           tlsfront binary (a build of the commit before a change) measured in
#           the same run, taking turns with the rest: its column and the
#           tlsfront/tlsfront_base ratio are the change's effect
#   PERF_STAT=1 (needs perf and tracepoints): count each proxy's system calls
#           by name, context switches and wakeups during every throughput run
#           (perf stat -p), printed per handshake (per request for the request
#           cases) below the tables: where part load spends more than saturation
#   PEER_HEADERS=1 (0: haproxy and nginx forward requests as they came, without
#           the X-Forwarded-For/-Proto/-Host/-Port that tlsfront always sets)
#   TF_BENCH_DIR=/tmp/tlsfront-bench-load (certificates, configs, logs, raw results)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
repeat=${REPEAT:-3}
rounds=${ROUNDS:-1}
duration=${DURATION:-10}
conns=${CONNS:-50}
idle_n=${IDLE:-2000}
idle_request=${IDLE_REQUEST:-1}
spread_n=${SPREAD:-10000}
bulk_conns=${BULK_CONNS:-8}
h2_requests=${H2_REQUESTS:-200000}
h2_conns=${H2_CONNS:-50}
h2_streams=${H2_STREAMS:-10}
rate=${RATE:-1200}
rate_conns=${RATE_CONNS:-400}
h2=0 # 1 while an HTTP/2 case runs: the proxies' configurations offer h2
proxies=${PROXIES:-tlsfront haproxy nginx}
cases=${CASES:-ecdsa rsa resume idle}
work=${TF_BENCH_DIR:-/tmp/tlsfront-bench-load}
peer_headers=${PEER_HEADERS:-1}
perf_stat=${PERF_STAT:-0}
perf_events="task-clock,context-switches,raw_syscalls:sys_enter,sched:sched_wakeup"
for sc in epoll_wait epoll_pwait epoll_ctl accept4 read write writev recvfrom sendto recvmsg sendmsg \
    close shutdown connect setsockopt getsockopt getsockname getpeername ioctl timerfd_settime \
    clock_gettime futex getrandom brk mmap munmap madvise; do
    perf_events+=",syscalls:sys_enter_$sc"
done
sni=tenant0.bench.example
tck=$(getconf CLK_TCK)
loadgen=$build/bench/load/bench_loadgen
tlsfront=${TLSFRONT:-$build/proxy/tlsfront}

PATH=$PATH:/usr/sbin
for p in haproxy nginx; do
    case " $proxies " in *" $p "*)
        # Debian's haproxy and nginx, the peers the SPEC compares against (the
        # package's service is not started where policy-rc.d forbids it).
        command -v $p >/dev/null ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q $p >/dev/null || true ;;
    esac
done
case " $cases " in *" h2 "*)
    # nghttp2's load generator (Debian's nghttp2-client, also a test peer).
    command -v h2load >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nghttp2-client >/dev/null || true ;;
esac
cmake --build "$build" --target bench_loadgen bench_backend bench_cs_gen >/dev/null
# The proxy may not build yet: its rows then say n/a.
cmake --build "$build" --target tlsfront >/dev/null 2>&1 || true
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

median() { sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : "n/a"}'; }
field() { sed -E "s/.*(^| )$1=([^ ]+).*/\2/"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { # PID -> utime + stime in ticks, or "gone"
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo gone; return; }
    echo "${s##*) }" | awk '{print $12 + $13}'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo gone; }
has() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; } # WORD LIST

wait_port() { # PORT PID: 0 once PORT accepts, 1 if PID died or 60 s passed
    for _ in $(seq 600); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

rsa_certs() { # DIR: RSA-2048 root, intermediate and leaf; bundle = leaf + intermediate + key
    rm -rf "$1" && mkdir -p "$1/certs"
    (
        cd "$1"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out root.crt -days 3650 \
            -subj "/CN=bench RSA root" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout int.key -out int.csr \
            -subj "/CN=bench RSA intermediate" 2>/dev/null
        printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n' >int.ext
        openssl x509 -req -in int.csr -CA root.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile int.ext -out int.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=$sni" \
            2>/dev/null
        printf 'subjectAltName=DNS:%s,DNS:*.%s\nextendedKeyUsage=serverAuth\n' "$sni" "$sni" \
            >leaf.ext
        openssl x509 -req -in leaf.csr -CA int.crt -CAkey int.key -CAcreateserial -days 365 \
            -extfile leaf.ext -out leaf.crt 2>/dev/null
        cat leaf.crt int.crt leaf.key >certs/tenant0.pem
        chmod 600 certs/tenant0.pem
    )
}

make_certs() {
    if [ ! -f "$work/ecdsa/certs/tenant000000.pem" ]; then
        rm -rf "$work/ecdsa"
        "$build/bench/certstore/bench_cs_gen" "$work/ecdsa" 1 >/dev/null
    fi
    [ -f "$work/rsa/certs/tenant0.pem" ] || rsa_certs "$work/rsa"
    local last
    last=$work/spread/certs/tenant$(printf %06d $((spread_n - 1))).pem
    if has spread "$cases" && [ ! -f "$last" ]; then
        rm -rf "$work/spread"
        "$build/bench/certstore/bench_cs_gen" "$work/spread" "$spread_n" >/dev/null
    fi
}

# KIND -> the bundle for tenant0 (what SNI selects), and the one served without SNI.
sni_cert() { if [ "$1" = rsa ]; then echo "$work/rsa/certs/tenant0.pem"; else echo "$work/$1/certs/tenant000000.pem"; fi; }
default_cert() { if [ "$1" = rsa ]; then sni_cert rsa; else echo "$work/$1/certs/system.pem"; fi; }

# In the request cases tlsfront replaces X-Forwarded-For and sets -Proto, -Host
# and -Port on every request (docs/HTTP.md); an operator who fronts web
# applications with haproxy or nginx configures the same four, so the peers are
# measured doing the same work per request (PEER_HEADERS=0: without them).
haproxy_headers() {
    [ "$haproxy_mode" = http ] && [ "$peer_headers" = 1 ] || return 0
    cat <<'HDR'
    http-request set-header X-Forwarded-For %[src]
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Forwarded-Port %[dst_port]
HDR
}

nginx_headers() {
    [ "$peer_headers" = 1 ] || return 0
    cat <<'HDR'
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port $server_port;
HDR
}

haproxy_cfg() { # KIND PORT -> config path; the default certificate is the directory's first
    local cfg=$work/haproxy-$1.cfg
    cat >"$cfg" <<CFG
global
    nbthread 1
    maxconn 8000
defaults
    mode $haproxy_mode
    timeout client 60s
    timeout server 60s
    timeout connect 5s
frontend f
    bind 127.0.0.1:$2 ssl crt $work/$1/certs/$([ "$h2" = 1 ] && echo " alpn h2,http/1.1")
$(haproxy_headers)
    default_backend b
backend b
    server s 127.0.0.1:$backend_port
CFG
    echo "$cfg"
}

nginx_cfg() { # KIND PORT -> config path; one certificate (the one SNI would select)
    local cfg=$work/nginx-$1.conf
    mkdir -p "$work/nginx-tmp"
    cat >"$cfg" <<CFG
daemon off;
master_process off;
worker_processes 1;
error_log $work/nginx.log warn;
pid $work/nginx.pid;
events { worker_connections 8000; }
http {
    access_log off;
    client_body_temp_path $work/nginx-tmp;
    proxy_temp_path $work/nginx-tmp;
    fastcgi_temp_path $work/nginx-tmp;
    uwsgi_temp_path $work/nginx-tmp;
    scgi_temp_path $work/nginx-tmp;
    keepalive_requests 1000000; # like the others: no limit on a client connection
    upstream b {
        server 127.0.0.1:$backend_port;
        keepalive $([ "$h2" = 1 ] && echo 512 || echo 64); # h2: as many as streams in flight
    }
    server {
        listen 127.0.0.1:$2 ssl$([ "$h2" = 1 ] && echo " http2");
        ssl_certificate $(sni_cert "$1");
        ssl_certificate_key $(sni_cert "$1");
        ssl_protocols TLSv1.2 TLSv1.3; # 1.22 leaves TLS 1.3 out by default
        location / {
            proxy_pass http://b;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
$(nginx_headers)
        }
    }
}
CFG
    echo "$cfg"
}

# routes50's tenant keys: 50 routes (the request matches /app/r37/), cookie
# stickiness on each, a request and a response header rule.
tlsfront_routes() {
    cat <<CFG
    balance: cookie
    headers:
      request: {set: {X-Tenant: bench}}
      response: {set: {Strict-Transport-Security: "max-age=31536000"}}
    routes:
CFG
    for i in $(seq 0 49); do
        printf '      - {path: /app/r%d/, backends: ["127.0.0.1:%s"]}\n' "$i" "$backend_port"
    done
}

tlsfront_cfg() { # KIND PORT -> config path (SPEC §3)
    local cfg=$work/tlsfront-$1.yaml
    cat >"$cfg" <<CFG
workers: 1
log: {level: warn, access: "off"}
listen:
  https: ["127.0.0.1:$2"]
tls:
  certs: ["$work/$1/certs"]
  default_cert: $(default_cert "$1")
tenants:
  bench:
    hosts: ["*"]
    backends: ["127.0.0.1:$backend_port"]
CFG
    [ "${tf_routes:-0}" = 1 ] && tlsfront_routes >>"$cfg"
    [ "$h2" = 1 ] && echo "http2: {enabled: true, max_concurrent_streams: 100}" >>"$cfg"
    echo "$cfg"
}

start_proxy() { # PROXY KIND: sets proxy_pid and proxy_port, or fails
    local cfg
    proxy_port=$(free_port)
    case $1 in
    haproxy)
        cfg=$(haproxy_cfg "$2" "$proxy_port")
        taskset -c 0 haproxy -f "$cfg" -db >>"$work/haproxy.log" 2>&1 &
        ;;
    nginx)
        command -v nginx >/dev/null || return 1
        cfg=$(nginx_cfg "$2" "$proxy_port")
        taskset -c 0 nginx -c "$cfg" -e "$work/nginx.log" >>"$work/nginx.out" 2>&1 &
        ;;
    tlsfront)
        [ -x "$tlsfront" ] || return 1
        cfg=$(tlsfront_cfg "$2" "$proxy_port")
        taskset -c 0 "$tlsfront" run -c "$cfg" >>"$work/tlsfront.log" 2>&1 &
        ;;
    tlsfront_base)
        [ -x "${TLSFRONT_BASE:-}" ] || return 1
        cfg=$(tlsfront_cfg "$2" "$proxy_port")
        taskset -c 0 "$TLSFRONT_BASE" run -c "$cfg" >>"$work/tlsfront_base.log" 2>&1 &
        ;;
    esac
    proxy_pid=$!
    pids+=("$proxy_pid")
    if ! wait_port "$proxy_port" "$proxy_pid"; then
        stop_proxy "$proxy_pid"
        return 1
    fi
}

stop_proxy() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

seconds() { awk -v a="$1" -v b="$2" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}'; }

# One throughput run: appends the load generator's line, proxy_cpu= and
# backend_cpu= to OUT; fails if the proxy is gone.
load_run() { # PID PORT OUT LOADGEN-ARGS...
    local pid=$1 port=$2 out=$3 c0 c1 b0 b1 line
    shift 3
    local perf_pid=""
    c0=$(cpu_ticks "$pid") b0=$(cpu_ticks "$backend_pid")
    if [ "$perf_stat" = 1 ]; then
        perf stat -x, -e "$perf_events" -p "$pid" -o "$work/perf.out" &
        perf_pid=$!
    fi
    line=$(taskset -c 1 "$loadgen" --connect "127.0.0.1:$port" --conns "$conns" \
        --duration "$duration" "$@" </dev/null || true)
    c1=$(cpu_ticks "$pid") b1=$(cpu_ticks "$backend_pid")
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    [ "$c1" != gone ] || return 1
    [ -n "$line" ] || line="handshakes=0 errors=-1 rate=0 cpu=0 resumed=0"
    echo "$line proxy_cpu=$(seconds "$c0" "$c1") backend_cpu=$(seconds "$b0" "$b1")$(perf_fields)" >>"$out"
}

# perf stat's counts of the last run as " perf_NAME=COUNT" fields (NAME: the
# event without its "syscalls:sys_enter_" or "sched:" prefix), or nothing.
perf_fields() {
    [ "$perf_stat" = 1 ] && [ -s "$work/perf.out" ] || return 0
    awk -F, '$1 ~ /^[0-9.]+$/ { n = $3; sub(/^(syscalls:sys_enter_|raw_syscalls:|sched:)/, "", n);
        printf " perf_%s=%s", n, $1 }' "$work/perf.out"
}

# h2load's children CPU seconds: the last line of `times` ("0m1.5s 0m0.2s").
times_cpu() { tail -1 | awk '{s = 0; for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } printf "%.3f", s}'; }

# One HTTP/2 run (h2load, the whole H2_REQUESTS): appends requests= (2xx
# responses), errors=, seconds=, cpu= (h2load's), proxy_cpu= and
# backend_cpu= to OUT; fails if the proxy is gone.
h2_run() { # PID PORT OUT
    local pid=$1 port=$2 out=$3 c0 c1 b0 b1 log=$work/h2load.out
    c0=$(cpu_ticks "$pid") b0=$(cpu_ticks "$backend_pid")
    # times: the subshell's children, i.e. h2load's own CPU.
    (
        taskset -c 1 h2load -n "$h2_requests" -c "$h2_conns" -m "$h2_streams" \
            --connect-to="127.0.0.1:$port" "https://$sni:$port/" </dev/null || true
        times
    ) >"$log" 2>&1
    c1=$(cpu_ticks "$pid") b1=$(cpu_ticks "$backend_pid")
    [ "$c1" != gone ] || return 1
    cat "$log" >>"$work/h2load.log"
    awk -v lg="$(times_cpu <"$log")" -v pc="$(seconds "$c0" "$c1")" -v bc="$(seconds "$b0" "$b1")" -v n="$h2_conns" '
        /^finished in/ { s = $3; ms = s ~ /ms,$/; sub(/m?s,$/, "", s); if (ms) s /= 1000 }
        /^requests:/ { total = $2 }
        /^status codes:/ { ok = $3 }
        END { if (s == "") s = 0
              printf "handshakes=%d requests=%d errors=%d seconds=%s req_rate=%.1f p50_ms=- p99_ms=- cpu=%s cpu_us_per_hs=- proxy_cpu=%s backend_cpu=%s\n",
                  n, ok, total - ok, s, (s > 0 ? ok / s : 0), lg, pc, bc }' "$log" >>"$out"
}

# One idle run on a fresh proxy: appends the load generator's line and kib_per_conn= to OUT.
idle_run() { # PROXY OUT
    local pid port r0 r1 lg out=$2 line flag=()
    start_proxy "$1" ecdsa || return 1
    pid=$proxy_pid port=$proxy_port
    # HTTP/2 idle connections: after one finished stream each (SPEC §10).
    [ "$h2" = 1 ] && flag=(--h2)
    # Warm-up, so start-up allocations are not charged to the idle connections.
    taskset -c 1 "$loadgen" --connect "127.0.0.1:$port" --sni "$sni" --conns 4 --duration 0.5 \
        "${flag[@]}" </dev/null >/dev/null || true
    sleep 0.5
    r0=$(rss_kib "$pid")
    [ "$idle_request" = 1 ] || [ "$h2" = 1 ] && flag+=(--idle-request)
    taskset -c 1 "$loadgen" --connect "127.0.0.1:$port" --sni "$sni" --conns 100 \
        --idle "$idle_n" "${flag[@]}" </dev/null >"$work/idle.out" 2>/dev/null &
    lg=$!
    pids+=("$lg")
    for _ in $(seq 600); do
        grep -q '^ready' "$work/idle.out" 2>/dev/null && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1
    r1=$(rss_kib "$pid")
    line=$(head -1 "$work/idle.out")
    kill "$lg" 2>/dev/null || true
    wait "$lg" 2>/dev/null || true
    stop_proxy "$pid"
    [ "$r1" != gone ] && grep -q '^ready' "$work/idle.out" || return 1
    echo "$line kib_per_conn=$(awk -v a="$r0" -v b="$r1" -v n="$idle_n" \
        'BEGIN {printf "%.1f", (b - a) / n}') rss_before=$r0 rss_after=$r1" >>"$out"
}

case_args() { # CASE -> load generator arguments
    case $1 in
    resume) echo "--resume --sni $sni" ;;
    rate) echo "--full --sni $sni --rate $rate --conns $rate_conns" ;;
    spread) echo "--full --sni-spread $spread_n" ;;
    keepalive) echo "--full --requests 0 --sni $sni" ;;
    routes1 | routes50) echo "--full --requests 0 --sni $sni --path /app/r37/item?x=1" ;;
    bulk) echo "--full --requests 0 --conns $bulk_conns --sni $sni" ;;
    *) echo "--full --sni $sni" ;;
    esac
}

start_backend() { # SIZE: sets backend_port and backend_pid for the next proxy
    local f=$work/backend-$1.port
    if [ ! -s "$f" ]; then
        taskset -c 1 "$build/bench/load/bench_backend" --size "$1" --port-file "$f" >/dev/null &
        pids+=("$!")
        echo "$!" >"$work/backend-$1.pid"
        for _ in $(seq 50); do [ -s "$f" ] && break; sleep 0.1; done
    fi
    backend_port=$(cat "$f") backend_pid=$(cat "$work/backend-$1.pid")
}

run_kind() { # PROXY KIND CASE...: one proxy instance, each CASE REPEAT times
    local p=$1 kind=$2 pid port c
    shift 2
    start_proxy "$p" "$kind" || {
        echo "$p: does not start with the $kind certificates (see $work/$p.log)" >&2
        return 1
    }
    pid=$proxy_pid port=$proxy_port
    for c in "$@"; do
        for _ in $(seq "$repeat"); do
            if [ "$c" = h2 ]; then
                h2_run "$pid" "$port" "$work/results/$p.$c"
            else
                # shellcheck disable=SC2046 # the arguments are words
                load_run "$pid" "$port" "$work/results/$p.$c" $(case_args "$c")
            fi || {
                echo "$p: exited during the $c case (see $work/$p.log)" >&2
                stop_proxy "$pid"
                return 1
            }
        done
    done
    stop_proxy "$pid"
}

# PROXY: every case, raw lines into $work/results/PROXY.CASE. A proxy that
# fails one case (does not start, exits) still gets the others: each certificate
# kind starts a fresh instance.
run_proxy() {
    local p=$1 want=()
    haproxy_mode=tcp
    start_backend 16
    for c in ecdsa resume rate; do has $c "$cases" && want+=("$c"); done
    [ ${#want[@]} -eq 0 ] || run_kind "$p" ecdsa "${want[@]}" || true
    if has rsa "$cases"; then run_kind "$p" rsa rsa || true; fi
    # nginx would need one server block per certificate for SNI.
    if has spread "$cases" && [ "$p" != nginx ]; then run_kind "$p" spread spread || true; fi
    haproxy_mode=http
    if has keepalive "$cases"; then
        start_backend 1024
        run_kind "$p" ecdsa keepalive || true
    fi
    if [ "${p%_base}" = tlsfront ]; then
        if has routes1 "$cases"; then
            start_backend 1024
            run_kind "$p" ecdsa routes1 || true
        fi
        if has routes50 "$cases"; then
            start_backend 1024
            tf_routes=1 run_kind "$p" ecdsa routes50 || true
        fi
    fi
    if has bulk "$cases"; then
        start_backend 1048576
        run_kind "$p" ecdsa bulk || true
    fi
    if has h2 "$cases"; then
        start_backend 1024
        h2=1 run_kind "$p" ecdsa h2 || true
    fi
    haproxy_mode=tcp
    start_backend 16
    if has idle "$cases"; then
        for _ in $(seq "$repeat"); do
            idle_run "$p" "$work/results/$p.idle" || {
                echo "$p: idle case failed (see $work/$p.log, $work/idle.out)" >&2
                break
            }
        done
    fi
    haproxy_mode=http
    if has h2idle "$cases"; then
        for _ in $(seq "$repeat"); do
            h2=1 idle_run "$p" "$work/results/$p.h2idle" || {
                echo "$p: h2idle case failed (see $work/$p.log, $work/idle.out)" >&2
                break
            }
        done
    fi
}

med() { # PROXY CASE KEY -> median of KEY over the runs, or n/a
    local f=$work/results/$1.$2
    [ -s "$f" ] || { echo n/a; return; }
    field "$3" <"$f" | median
}

unit() { # CASE -> the key counted, and its divisor
    case $1 in
    keepalive | routes1 | routes50 | h2) echo "requests 1" ;;
    bulk) echo "bytes 1000000" ;;
    *) echo "handshakes 1" ;;
    esac
}

# PROXY CASE [proxy_cpu|seconds] -> median of the case's unit per proxy
# CPU-second, or per wall second.
per_cpu() {
    local f=$work/results/$1.$2 key div
    [ -s "$f" ] || { echo n/a; return; }
    read -r key div < <(unit "$2")
    awk -v key="$key" -v div="$div" -v per="${3:-proxy_cpu}" \
        '{h = 0; c = 0; for (i = 1; i <= NF; i++) { split($i, kv, "=");
          if (kv[1] == key) h = kv[2] / div; if (kv[1] == per) c = kv[2] }
          printf "%.0f\n", (c > 0 ? h / c : 0)}' "$f" | median
}

ratio() { # A B -> A/B or -
    case "$1$2" in
    *n/a*) echo "-" ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}' ;;
    esac
}

label() {
    case $1 in
    ecdsa) echo "full handshake, TLS 1.3, ECDSA P-256, 1 request" ;;
    rsa) echo "full handshake, TLS 1.3, RSA-2048, 1 request" ;;
    resume) echo "resumed handshake, TLS 1.3 ticket, 1 request" ;;
    rate) echo "full handshake, ECDSA, 1 request, $rate/s offered (part load)" ;;
    spread) echo "full handshake, ECDSA, SNI over $spread_n certificates" ;;
    idle) echo "KiB per idle TLS connection ($idle_n)" ;;
    h2idle) echo "KiB per idle HTTP/2 connection, one finished stream ($idle_n)" ;;
    h2) echo "HTTP/2, 1 KiB responses, $h2_conns connections × $h2_streams streams (h2load)" ;;
    keepalive) echo "keep-alive requests, 1 KiB responses, $conns connections" ;;
    routes1) echo "keep-alive requests, a tenant with one route" ;;
    routes50) echo "keep-alive requests, 50 routes, cookie, header rules" ;;
    bulk) echo "bulk 1 MiB responses, MB, $bulk_conns connections" ;;
    esac
}

is_idle() { [ "$1" = idle ] || [ "$1" = h2idle ]; }

peers() { for p in $proxies; do [ "$p" = tlsfront ] || echo "$p"; done; }

print_table() {
    local h="| case |" s="|---|" row p c
    for p in $proxies; do h+=" $p /s | $p per CPU-s |" s+="---:|---:|"; done
    if has tlsfront "$proxies"; then
        for p in $(peers); do h+=" tlsfront/$p |" s+="---:|"; done
    fi
    echo "$h" && echo "$s"
    for c in $cases; do
        row="| $(label "$c") |"
        for p in $proxies; do
            if is_idle "$c"; then row+=" $(med "$p" "$c" kib_per_conn) | |"; else
                row+=" $(per_cpu "$p" "$c" seconds) | $(per_cpu "$p" "$c") |"; fi
        done
        if has tlsfront "$proxies"; then
            for p in $(peers); do
                if is_idle "$c"; then
                    row+=" $(ratio "$(med tlsfront "$c" kib_per_conn)" "$(med "$p" "$c" kib_per_conn)") |"
                else
                    row+=" $(ratio "$(per_cpu tlsfront "$c")" "$(per_cpu "$p" "$c")") |"
                fi
            done
        fi
        echo "$row"
    done
}

# The rate case against ecdsa: CPU per handshake at part load and saturated.
print_part_load() {
    has rate "$cases" || return 0
    local p part sat
    echo
    echo "Part load: proxy CPU µs per handshake at $rate/s offered against saturated (ecdsa):"
    for p in $proxies; do
        part=$(per_cpu "$p" rate) sat=$(per_cpu "$p" ecdsa)
        printf -- '- %s: %s at %s/s (achieved %s/s, missed %s), %s saturated: %s×\n' "$p" \
            "$(awk -v h="$part" 'BEGIN {print (h > 0 ? sprintf("%.0f µs", 1e6 / h) : "n/a")}')" \
            "$rate" "$(per_cpu "$p" rate seconds)" "$(med "$p" rate missed)" \
            "$(awk -v h="$sat" 'BEGIN {print (h > 0 ? sprintf("%.0f µs", 1e6 / h) : "n/a")}')" \
            "$(ratio "$sat" "$part")"
    done
}

# PERF_STAT=1: each proxy's system calls (by name, the busiest), context
# switches and wakeups per unit of work (handshake or request), per case.
print_perf_table() {
    [ "$perf_stat" = 1 ] || return 0
    local p c f key div
    echo
    echo "Per handshake (request cases: per request), medians of the runs (perf stat -p on the proxy):"
    echo
    for p in $proxies; do
        for c in $cases; do
            f=$work/results/$p.$c
            is_idle "$c" || [ ! -s "$f" ] && continue
            read -r key div < <(unit "$c")
            printf '%s %s: ' "$p" "$c"
            awk -v key="$key" -v div="$div" '
                { h = 0; for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) h = kv[2] / div }
                  if (h == 0) next
                  for (i = 1; i <= NF; i++) { split($i, kv, "=");
                      if (kv[1] ~ /^perf_/ && kv[1] != "perf_task-clock") print substr(kv[1], 6), kv[2] / h } }' "$f" |
                sort -k1,1 -k2,2g | awk '
                    function flush() { if (k && v[int((k + 1) / 2)] >= 0.05) printf "%s %.2f\n", name, v[int((k + 1) / 2)] }
                    $1 != name { flush(); name = $1; k = 0 }
                    { v[++k] = $2 }
                    END { flush() }' |
                sort -k2 -g -r | awk '{printf "%s%s=%s", (NR > 1 ? ", " : ""), $1, $2} END {print ""}'
        done
    done
}

print_loadgen_table() {
    printf '| proxy | case | handshakes | requests | errors | p50 ms | p99 ms | proxy CPU s | loadgen CPU s | backend CPU s | loadgen CPU µs/handshake |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    for p in $proxies; do
        for c in $cases; do
            is_idle "$c" && continue
            [ -s "$work/results/$p.$c" ] || { printf '| %s | %s | n/a | | | | | | | | |\n' "$p" "$c"; continue; }
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" "$c" \
                "$(med "$p" "$c" handshakes)" "$(med "$p" "$c" requests)" "$(med "$p" "$c" errors)" \
                "$(med "$p" "$c" p50_ms)" "$(med "$p" "$c" p99_ms)" "$(med "$p" "$c" proxy_cpu)" "$(med "$p" "$c" cpu)" \
                "$(med "$p" "$c" backend_cpu)" "$(med "$p" "$c" cpu_us_per_hs)"
        done
    done
}

mkdir -p "$work"
rm -rf "$work/results" && mkdir -p "$work/results"
make_certs
rm -f "$work"/backend-*.port "$work"/backend-*.pid

# The host's noise drifts over minutes: with ROUNDS > 1 the proxies take
# turns, REPEAT runs each per round, so no proxy gets all the quiet minutes.
for _ in $(seq "$rounds"); do
    for p in $proxies; do run_proxy "$p"; done
done

echo "median of $((repeat * rounds)) runs ($rounds rounds, proxies in turn), ${duration} s each, $conns connections in flight;" \
    "proxy on core 0, load generator and backend on core 1; n/a: did not start"
if has h2 "$cases"; then
    echo "h2: h2load, $h2_requests requests per run over $h2_conns connections × $h2_streams streams"
fi
echo
print_table
print_part_load
print_perf_table
for p in $proxies; do
    compgen -G "$work/results/$p.*" >/dev/null || echo "$p: n/a (did not start: see $work/$p.log)"
done
echo
echo "Load generator against proxy (medians of the raw runs): the proxy is the bottleneck while"
echo "its CPU seconds are close to the run's ${duration} s; the load generator is, when its CPU"
echo "seconds plus the backend's are (they share core 1)."
echo
print_loadgen_table
echo
echo "raw results: $work/results"
