#!/usr/bin/env bash
# ThreadSanitizer soak: the proxy built with -fsanitize=thread, two workers,
# under handshake, keep-alive and HTTP/2 (h2load) load while everything that crosses threads
# happens at once: SIGHUP reloads, renewed bundles renamed over their files,
# admin POST /reload, PUT and DELETE of bundles (thread-pool file work),
# /metrics and /certs scrapes, SIGUSR1 log reopening, active health checks.
# Fails on any ThreadSanitizer report other than a file-descriptor reuse one
# (TSan sees a descriptor closed by one thread and reused by another through
# libuv, which it does not instrument, as a race on the descriptor).
# Criterion itself does not run under TSan, hence a script and not a suite.
#
#   scripts/tsan-soak.sh [TOOLS_BUILD_DIR]   (default build; SOAK_SECONDS=20)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
tools=$(realpath -m "${1:-build}")
seconds=${SOAK_SECONDS:-20}
work=$(mktemp -d /tmp/tlsfront-tsan.XXXXXX)
tsan_build=${TF_TSAN_BUILD:-$src/build-tsan}

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "tsan: building the proxy with -fsanitize=thread in $tsan_build"
mkdir -p "$tsan_build"
cmake -S . -B "$tsan_build" -DCMAKE_BUILD_TYPE=Debug -DTLSFRONT_TESTS=OFF -DTLSFRONT_BENCH=OFF \
    -DCMAKE_C_FLAGS="-fsanitize=thread -O1 -g" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    >"$tsan_build/configure.log" 2>&1 || { tail -20 "$tsan_build/configure.log"; exit 1; }
cmake --build "$tsan_build" -j"$(nproc)" --target tlsfront >"$tsan_build/build.log" 2>&1 ||
    { grep -E 'error' "$tsan_build/build.log" | head -20; exit 1; }
[ -f "$tools/CMakeCache.txt" ] || cmake -S . -B "$tools" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$tools" -j"$(nproc)" --target bench_loadgen bench_backend bench_cs_gen >/dev/null

# No port is picked here: the backend and the proxy bind port 0 and write the
# ports they got into a file (bench_backend --port-file, tlsfront's
# TLSFRONT_READY_FILE), waited for with a bound.
# wait_file FILE PID: until FILE has a complete first line (60 s at most, or
# until PID exits); prints that line.
wait_file() {
    local line
    for _ in $(seq 1200); do
        { IFS= read -r line <"$1"; } 2>/dev/null && { printf '%s\n' "$line"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
"$tools/bench/load/bench_backend" --size 1024 --port-file "$work/bport" >/dev/null 2>&1 &
pids+=("$!")
bport=$(wait_file "$work/bport" "$!") || { echo "tsan: the backend did not start" >&2; exit 1; }
"$tools/bench/certstore/bench_cs_gen" "$work/a" 20 >/dev/null
"$tools/bench/certstore/bench_cs_gen" "$work/b" 20 >/dev/null
cp -r "$work/a/certs" "$work/certs"
cat >"$work/t.yaml" <<CFG
workers: 2
log: {level: warn, access: "$work/access.log"}
listen:
  https: ["127.0.0.1:0"]
admin:
  listen: "127.0.0.1:0"
tls:
  certs: ["$work/certs"]
  default_cert: $work/certs/system.pem
tenants:
  bench:
    hosts: ["*"]
    backends: ["127.0.0.1:$bport"]
    health: { path: /, interval: 1s }
CFG
# limits.per_client far above the load's 24 connections from one address:
# every accept and close takes the same shard's lock from both workers (and
# every request, which takes a token from its bucket).
cat >>"$work/t.yaml" <<CFG
limits:
  per_client: {connections: 1000, requests_per_second: 1000000}
CFG

TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$work/tsan" \
    TLSFRONT_READY_FILE="$work/ready" \
    "$tsan_build/proxy/tlsfront" run -c "$work/t.yaml" >"$work/proxy.log" 2>&1 &
proxy=$!
pids+=("$proxy")
# The ready file appears whole (renamed into place) once every listener is bound.
wait_file "$work/ready" "$proxy" >/dev/null || { cat "$work/proxy.log"; exit 1; }
pport=$(sed -n 's/^https .*:\([0-9]*\)$/\1/p' "$work/ready" | head -n 1)
aport=$(sed -n 's/^admin .*:\([0-9]*\)$/\1/p' "$work/ready")

lg="$tools/bench/load/bench_loadgen"
"$lg" --connect "127.0.0.1:$pport" --conns 16 --duration "$seconds" --full --sni-spread 20 \
    >"$work/lg1.out" 2>&1 &
pids+=("$!")
"$lg" --connect "127.0.0.1:$pport" --conns 8 --duration "$seconds" --full --requests 0 \
    --sni tenant000003.bench.example >"$work/lg2.out" 2>&1 &
pids+=("$!")
# HTTP/2 streams on the same workers: the sessions, their child connections
# and the pool they share with HTTP/1.1 under the same reloads.
h2load -D "$((seconds - 2))" -c 4 -m 8 --connect-to="127.0.0.1:$pport" \
    "https://tenant000003.bench.example:$pport/" >"$work/h2.out" 2>&1 &
pids+=("$!")

admin="http://127.0.0.1:$aport"
end=$((SECONDS + seconds - 2))
i=0
while [ "$SECONDS" -lt "$end" ]; do
    i=$((i + 1))
    n=$(printf %06d $((i % 20)))
    kill -HUP "$proxy"
    cp "$work/b/certs/tenant$n.pem" "$work/certs/.renew" && mv "$work/certs/.renew" "$work/certs/tenant$n.pem"
    curl -s -o /dev/null "$admin/metrics"
    curl -s -o /dev/null "$admin/certs"
    curl -s -o /dev/null -X POST "$admin/reload"
    curl -s -o /dev/null -T "$work/b/certs/tenant000015.pem" "$admin/certs/soak$i.bench.example"
    [ $((i % 2)) = 0 ] && curl -s -o /dev/null -X DELETE "$admin/certs/soak$((i - 1)).bench.example"
    kill -USR1 "$proxy"
    sleep 1 # the pace of the soak: a round of cross-thread events a second
done
wait "${pids[2]}" "${pids[3]}" "${pids[4]}" 2>/dev/null || true
kill "$proxy"
wait "$proxy" 2>/dev/null || true

cat "$work/lg1.out" "$work/lg2.out"
reports=$(cat "$work"/tsan.* 2>/dev/null || true)
all=$(grep -c '^WARNING: ThreadSanitizer' <<<"$reports" || true)
# One report per block: a block is a descriptor-reuse report when TSan says
# the location is a file descriptor.
real=$(awk '/^WARNING: ThreadSanitizer/ {if (b != "" && b !~ /Location is file descriptor/) n++; b = $0; next}
            b != "" {b = b "\n" $0}
            END {if (b != "" && b !~ /Location is file descriptor/) n++; print n + 0}' <<<"$reports")
errors=$(cat "$work/lg1.out" "$work/lg2.out" | sed -nE 's/.*errors=([0-9-]+).*/\1/p' |
    awk '{s += ($1 < 0 ? 1 : $1)} END {print NR == 2 ? s : 1}')
# h2load: every request it sent must have succeeded.
h2line=$(grep -E '^requests: ' "$work/h2.out" || true)
h2ok=$(sed -nE 's/.* ([0-9]+) succeeded, ([0-9]+) failed.*/\2/p' <<<"$h2line")
[ -n "$h2ok" ] && [ "$h2ok" = 0 ] || { echo "tsan: h2load: ${h2line:-no result}" >&2; errors=$((errors + 1)); }
echo "tsan: $i rounds of reloads, renewals and admin calls; $all reports, $real not about descriptor reuse; load generator errors: $errors; h2load: $h2line"
if [ "$real" -ne 0 ]; then
    awk '/^WARNING: ThreadSanitizer/ {if (b != "" && b !~ /Location is file descriptor/) print b; b = $0; next}
         b != "" {b = b "\n" $0} END {if (b != "" && b !~ /Location is file descriptor/) print b}' <<<"$reports" |
        head -150
    exit 1
fi
[ "$errors" = 0 ] || { echo "tsan: the load generators saw errors" >&2; exit 1; }
