#!/usr/bin/env bash
# Where the proxy's CPU goes under one load case: `perf record` on the
# running proxy (pinned to core 0, load generator and backend on core 1, as
# bench/load/run.sh), samples grouped into kernel, X25519, P-256, hashing,
# AEAD, the rest of wolfSSL, libc, libuv, http-parser and tlsfront's own
# code. docs/PERFORMANCE.md quotes these shares. Then the proxy's CPU per
# request (or handshake) in µs, split into the kernel's writes, reads and
# epoll_wait, the rest of the kernel, and user space; and the TCP connections
# opened during the run (nstat TcpActiveOpens: the load generator's CONNS plus
# every backend connect).
#
#   bench/load/profile.sh [BUILD_DIR] [ecdsa|keepalive]   (SECONDS_=5)
#   PROXY=haproxy (mode http for keepalive, with the four X-Forwarded headers
#   bench/load/run.sh gives it; shares then by library)  CONNS=50
#   TLSFRONT=BUILD_DIR/proxy/tlsfront (the binary measured)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
kind=${2:-ecdsa}
secs=${SECONDS_:-5}
who=${PROXY:-tlsfront}
conns=${CONNS:-50}
tlsfront=${TLSFRONT:-$build/proxy/tlsfront}
command -v perf >/dev/null || { echo "profile: perf is not installed" >&2; exit 1; }
cmake --build "$build" --target bench_loadgen bench_backend bench_cs_gen tlsfront >/dev/null
work=$(mktemp -d /tmp/tlsfront-profile.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port) pport=$(free_port)
"$build/bench/certstore/bench_cs_gen" "$work" 1 >/dev/null
cat >"$work/p.yaml" <<CFG
workers: 1
log: {level: warn, access: "off"}
listen:
  https: ["127.0.0.1:$pport"]
tls:
  certs: ["$work/certs"]
  default_cert: $work/certs/system.pem
tenants:
  bench:
    hosts: ["*"]
    backends: ["127.0.0.1:$bport"]
CFG
hmode=tcp
[ "$kind" = keepalive ] && hmode=http
cat >"$work/h.cfg" <<CFG
global
    nbthread 1
    maxconn 8000
defaults
    mode $hmode
    timeout client 60s
    timeout server 60s
    timeout connect 5s
frontend f
    bind 127.0.0.1:$pport ssl crt $work/certs/
$([ "$hmode" = http ] && printf '    http-request set-header %s\n' 'X-Forwarded-For %[src]' \
    'X-Forwarded-Proto https' 'X-Forwarded-Host %[req.hdr(host)]' 'X-Forwarded-Port %[dst_port]')
    default_backend b
backend b
    server s 127.0.0.1:$bport
CFG
size=16
args=(--full)
[ "$kind" = keepalive ] && size=1024 args=(--full --requests 0)
taskset -c 1 "$build/bench/load/bench_backend" --size "$size" --listen "127.0.0.1:$bport" \
    >/dev/null 2>&1 &
pids+=("$!")
if [ "$who" = haproxy ]; then
    PATH=$PATH:/usr/sbin taskset -c 0 haproxy -f "$work/h.cfg" -db >"$work/proxy.log" 2>&1 &
else
    taskset -c 0 "$tlsfront" run -c "$work/p.yaml" >"$work/proxy.log" 2>&1 &
fi
proxy=$!
pids+=("$proxy")
sleep 0.5
ticks() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
command -v nstat >/dev/null && nstat -n >/dev/null
t0=$(ticks)
taskset -c 1 "$build/bench/load/bench_loadgen" --connect "127.0.0.1:$pport" --conns "$conns" \
    --duration $((secs + 3)) "${args[@]}" --sni tenant0.bench.example >"$work/lg.out" 2>&1 &
lg=$!
pids+=("$lg")
sleep 1
perf record -q -g -p "$proxy" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1
wait "$lg" || true
t1=$(ticks)
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep '%' | awk -v who="$who" '{
        p = $1; sub("%", "", p); dso = $2; sym = $4; g = "wolfSSL, other"
        if (who != "tlsfront") g = (dso ~ /kernel/) ? "kernel" : dso
        if (dso ~ /kernel/) g = "kernel"
        else if (sym ~ /curve25519|fe_|ge_/) g = "X25519"
        else if (sym ~ /sp_256|_256_/) g = "P-256 (ECDSA)"
        else if (sym ~ /[Ss]ha|Hmac|HKDF|DRBG|Hash_/) g = "SHA-2, HMAC, DRBG"
        else if (sym ~ /AES|Aes|GCM|gcm|[Cc]ha[Cc]ha|[Pp]oly/) g = "AEAD"
        else if (dso ~ /libc/) g = "libc (malloc, memcpy)"
        else if (dso ~ /libuv/) g = "libuv"
        else if (dso ~ /http_parser/) g = "http-parser"
        else if (sym ~ /^(tf_|tls_|conn_|tcp_|backend|client|resp|req|read_head|scan|hx|listener|pool|stream|worker|process|send_head)/) g = "tlsfront"
        s[g] += p
    } END { for (k in s) printf "%6.2f%%  %s\n", s[k], k }' | sort -rn

# The run's CPU per unit, and the perf shares of the same case turned into it.
unit=handshakes
[ "$kind" = keepalive ] && unit=requests
n=$(sed -E "s/.*(^| )$unit=([0-9]+).*/\2/" "$work/lg.out" | head -1)
us=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN {printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0)}')
echo
echo "$who: $n $unit, $us µs of proxy CPU each"
kshare=$(perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
    awk '/%/ && $2 ~ /kernel/ {p = $1; sub("%", "", p); k += p} END {print k + 0}')
perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
    awk -v us="$us" -v k="$kshare" '$3 == "[k]" {
        p = $1; sub("%", "", p); s[$4] = p
    } END {
        w = s["ksys_write"] + s["__sys_sendto"]; r = s["ksys_read"] + s["__sys_recvfrom"]
        e = s["__x64_sys_epoll_wait"]
        printf "  kernel, writes        %6.2f µs\n", w * us / 100
        printf "  kernel, reads         %6.2f µs\n", r * us / 100
        printf "  kernel, epoll_wait    %6.2f µs\n", e * us / 100
        printf "  kernel, the rest      %6.2f µs\n", (k - w - r - e) * us / 100
        printf "  user space            %6.2f µs\n", (100 - k) * us / 100
    }'
command -v nstat >/dev/null &&
    echo "TCP connections opened: $(nstat -z TcpActiveOpens | awk '/TcpActiveOpens/ {print $2}')"
