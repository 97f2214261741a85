#!/usr/bin/env bash
# Certificate-store benchmark: generates 1,000 / 10,000 / 100,000 ECDSA P-256
# bundles under one CA, then measures tlsfront's store (load on every core,
# resident memory per bundle, SNI lookups, incremental rebuilds) and, for
# comparison in the same run, `haproxy -c` loading the same directory.
#
#   bench/certstore/run.sh [BUILD_DIR] [COUNT...]
#   REPEAT=3 (runs per figure; medians are reported)  HAPROXY_MAX=10000 (0: skip haproxy)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
counts=${*:-1000 10000 100000}
repeat=${REPEAT:-3}
haproxy_max=${HAPROXY_MAX:-10000}
work=${TF_BENCH_DIR:-/tmp/tlsfront-bench-certstore}

if [ "$haproxy_max" -gt 0 ] && ! command -v haproxy >/dev/null; then
    # Debian's haproxy, the peer the SPEC compares against; not needed by the tests.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy >/dev/null
fi
cmake --build "$build" --target bench_cs bench_cs_gen >/dev/null

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
field() { sed -E "s/.* $1=([^ ]+).*/\1/"; }

haproxy_load() { # DIR -> "seconds maxrss_kib"
    local cfg="$1/haproxy.cfg"
    cat >"$cfg" <<CFG
global
    maxconn 100
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
frontend f
    bind 127.0.0.1:8443 ssl crt $1/certs/
    default_backend b
backend b
    server s 127.0.0.1:1
CFG
    python3 - "$cfg" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(["haproxy", "-c", "-q", "-f", sys.argv[1]], capture_output=True)
dt = time.monotonic() - t
if r.returncode != 0:
    sys.stderr.write(r.stderr.decode()[-2000:])
    sys.exit(1)
print("%.2f %d" % (dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
}

printf '| bundles | load s | KiB/bundle | lookup ns (1 name) | lookup ns (spread) | rebuild, none changed, s | rebuild, one changed, s | haproxy -c s | haproxy MiB |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in $counts; do
    dir="$work/$n"
    if [ ! -f "$dir/certs/tenant$(printf %06d $((n - 1))).pem" ]; then
        rm -rf "$dir"
        mkdir -p "$work"
        "$build/bench/certstore/bench_cs_gen" "$dir" "$n" >/dev/null
    fi
    : >"$dir/results"
    for _ in $(seq "$repeat"); do
        "$build/bench/certstore/bench_cs" "$dir/certs" 1000000 >>"$dir/results"
    done
    load=$(grep '^load' "$dir/results" | field seconds | median)
    kib=$(grep '^load' "$dir/results" | field kib_per_bundle | median)
    ns1=$(grep '^lookup' "$dir/results" | field one_name_ns | median)
    nsn=$(grep '^lookup' "$dir/results" | field spread_ns | median)
    same=$(grep '^rebuild_unchanged' "$dir/results" | field seconds | median)
    one=$(grep '^rebuild_one' "$dir/results" | field seconds | median)
    hs="-" hm="-"
    if [ "$n" -le "$haproxy_max" ] && command -v haproxy >/dev/null; then
        read -r hs hk < <(haproxy_load "$dir" || echo "failed 0")
        hm=$((hk / 1024))
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$n" "$load" "$kib" "$ns1" "$nsn" "$same" "$one" "$hs" "$hm"
done
