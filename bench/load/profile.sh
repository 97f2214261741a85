#!/usr/bin/env bash
# Where the proxy's CPU goes under one load case: `perf record` on the
# running proxy (pinned to core 0, load generator and backend on core 1, as
# bench/load/run.sh), samples grouped into kernel, X25519, P-256, hashing,
# AEAD, the rest of wolfSSL, libc, libuv, http-parser and tlsfront's own
# code. docs/PERFORMANCE.md quotes these shares.
#
#   bench/load/profile.sh [BUILD_DIR] [ecdsa|keepalive]   (SECONDS_=5)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
kind=${2:-ecdsa}
secs=${SECONDS_:-5}
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
size=16
args=(--full)
[ "$kind" = keepalive ] && size=1024 args=(--full --requests 0)
taskset -c 1 "$build/bench/load/bench_backend" --size "$size" --listen "127.0.0.1:$bport" \
    >/dev/null 2>&1 &
pids+=("$!")
taskset -c 0 "$build/proxy/tlsfront" run -c "$work/p.yaml" >"$work/proxy.log" 2>&1 &
proxy=$!
pids+=("$proxy")
sleep 0.5
taskset -c 1 "$build/bench/load/bench_loadgen" --connect "127.0.0.1:$pport" --conns 50 \
    --duration $((secs + 3)) "${args[@]}" --sni tenant0.bench.example >"$work/lg.out" 2>&1 &
pids+=("$!")
sleep 1
perf record -q -p "$proxy" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
    grep '%' | awk '{
        p = $1; sub("%", "", p); dso = $2; sym = $4; g = "wolfSSL, other"
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
