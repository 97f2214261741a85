#!/usr/bin/env bash
# Reload benchmark (SPEC §10, issue 6): tlsfront serving 10,000 bundles
# under a continuous load of full handshakes with one request each; one
# bundle is renewed (a new certificate renamed over its file, as certbot and
# acme.sh do) and the script measures how long until new handshakes show the
# new serial, and how many requests of the load failed (target: zero).
#
#   bench/reload/run.sh [BUILD_DIR]
#   COUNT=10000 (bundles)  REPEAT=5 (renewals; medians reported)
#   CONNS=20 (load connections in flight)  TF_BENCH_DIR=/tmp/tlsfront-bench-reload
#
# No sleeps stand for measurements: the renewal time is from the rename to
# the first handshake that shows the new serial (openssl s_client in a tight
# loop; each probe takes a few ms, which bounds the resolution).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
count=${COUNT:-10000}
repeat=${REPEAT:-5}
conns=${CONNS:-20}
work=${TF_BENCH_DIR:-/tmp/tlsfront-bench-reload}
name=tenant5.bench.example
file=tenant000005.pem

cmake --build "$build" --target tlsfront bench_loadgen bench_backend bench_cs_gen >/dev/null
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

echo "generating $count bundles and $repeat renewals..."
"$build/bench/certstore/bench_cs_gen" "$work/live" "$count" >/dev/null
# Renewals come from other runs of the generator: a different CA, which
# tlsfront accepts (each bundle carries its intermediate) and the load
# generator does not check (no --ca).
for i in $(seq "$repeat"); do
    "$build/bench/certstore/bench_cs_gen" "$work/renew$i" 10 >/dev/null
done

serial_of() { openssl x509 -noout -serial -in "$1" | sed 's/serial=//'; }

"$build/bench/load/bench_backend" --size 16 --port-file "$work/backend.port" >/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/backend.port" ] && break; sleep 0.05; done
backend_port=$(cat "$work/backend.port")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/tlsfront.yaml" <<CFG
workers: 1
log: {level: info, access: "off"}
listen:
  https: ["127.0.0.1:$port"]
tls:
  certs: ["$work/live/certs"]
  default_cert: $work/live/certs/system.pem
tenants:
  bench:
    hosts: ["*"]
    backends: ["127.0.0.1:$backend_port"]
CFG
"$build/proxy/tlsfront" run -c "$work/tlsfront.yaml" 2>"$work/tlsfront.log" &
tf_pid=$!
pids+=($tf_pid)
for _ in $(seq 400); do
    grep -q "tlsfront running" "$work/tlsfront.log" && break
    sleep 0.05
done
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$tf_pid/status")

probe() { # -> the serial served for $name now
    openssl s_client -connect "127.0.0.1:$port" -servername "$name" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'
}

results=()
for i in $(seq "$repeat"); do
    # The load: full handshakes + one request each, for the whole renewal.
    "$build/bench/load/bench_loadgen" --connect "127.0.0.1:$port" --full --sni "$name" \
        --conns "$conns" --duration 6 >"$work/load$i.out" 2>&1 &
    load_pid=$!
    sleep 1 # let the load reach its steady state before the renewal
    new=$(serial_of "$work/renew$i/certs/$file")
    cp "$work/renew$i/certs/$file" "$work/live/certs/.$file.tmp"
    t0=$(date +%s%N)
    mv "$work/live/certs/.$file.tmp" "$work/live/certs/$file"
    seen=""
    for _ in $(seq 2000); do
        seen=$(probe)
        [ "$seen" = "$new" ] && break
    done
    t1=$(date +%s%N)
    wait "$load_pid" || true
    [ "$seen" = "$new" ] || { echo "renewal $i: new serial never served" >&2; exit 1; }
    ms=$(((t1 - t0) / 1000000))
    errors=$(sed -E 's/.* errors=([0-9]+).*/\1/' "$work/load$i.out")
    handshakes=$(sed -E 's/.*handshakes=([0-9]+).*/\1/' "$work/load$i.out")
    echo "renewal $i: new certificate served after ${ms} ms; load: $handshakes handshakes, $errors errors"
    results+=("$ms $errors $handshakes")
done

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
med_ms=$(printf '%s\n' "${results[@]}" | awk '{print $1}' | median)
max_ms=$(printf '%s\n' "${results[@]}" | awk '{print $1}' | sort -g | tail -1)
total_errors=$(printf '%s\n' "${results[@]}" | awk '{s+=$2} END {print s}')
total_hs=$(printf '%s\n' "${results[@]}" | awk '{s+=$3} END {print s}')
rebuilds=$(grep -Eo '[0-9.]+ ms$' <(grep 'reload (certificates)' "$work/tlsfront.log") |
    tail -n "$repeat" | tr '\n' ' ' || true)
echo
echo "| bundles | renewals | rename → new certificate served (median, max) | handshakes under load | failed | proxy RSS at start |"
echo "|---:|---:|---|---:|---:|---:|"
echo "| $count | $repeat | $med_ms ms, $max_ms ms | $total_hs | $total_errors | $((rss_kib / 1024)) MiB |"
echo
echo "incremental rebuilds as the proxy logged them (after the 100 ms debounce): ${rebuilds:-none found (see $work/tlsfront.log)}"
[ "$total_errors" -eq 0 ]
