#!/usr/bin/env bash
# User-space instructions per keep-alive request, counted exactly by
# callgrind (other load on the machine does not change the count): the
# proxy runs under valgrind, bench_loadgen sends 1 KiB keep-alive requests
# on 50 connections, counters are zeroed after a warm-up and dumped 6 s
# later, and the total is divided by the calls to tf_metrics_request (one
# per request). docs/PERFORMANCE.md quotes these figures.
#
#   bench/load/callgrind.sh [BUILD_DIR]   (TLSFRONT=path of another binary;
#   KEEP=1 copies the callgrind output to /tmp for callgrind_annotate;
#   H2=1 loads it with h2load over HTTP/2 instead, 50 connections × 10 streams)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
tlsfront=${TLSFRONT:-$build/proxy/tlsfront}
command -v valgrind >/dev/null || { echo "callgrind: valgrind is not installed" >&2; exit 1; }
cmake --build "$build" --target bench_loadgen bench_backend bench_cs_gen tlsfront >/dev/null
work=$(mktemp -d /tmp/tlsfront-callgrind.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] && cp "$work"/cg.out.* /tmp/ 2>/dev/null; rm -rf "$work"
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
"$build/bench/load/bench_backend" --size 1024 --listen "127.0.0.1:$bport" >/dev/null 2>&1 &
pids+=("$!")
valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/cg.out.%p" "$tlsfront" run -c "$work/p.yaml" >"$work/proxy.log" 2>&1 &
vg=$!
pids+=("$vg")
sleep 4
if [ -n "${H2:-}" ]; then
    # HTTP/2: h2load's 50 connections × 10 streams, as the h2 case of run.sh.
    h2load -D 12 -c 50 -m 10 --connect-to="127.0.0.1:$pport" \
        "https://tenant0.bench.example:$pport/" >"$work/lg.out" 2>&1 &
else
    "$build/bench/load/bench_loadgen" --connect "127.0.0.1:$pport" --conns 50 --duration 12 \
        --timeout 30 --full --requests 0 --sni tenant0.bench.example >"$work/lg.out" 2>&1 &
fi
lg=$!
pids+=("$lg")
sleep 4
callgrind_control -z "$vg" >/dev/null 2>&1
sleep 6
callgrind_control -d "$vg" >/dev/null 2>&1
wait "$lg" || true
kill "$vg"
wait "$vg" 2>/dev/null || true
out=$(ls -t "$work"/cg.out.*.* | head -1)
# Self cost per function and the calls to tf_metrics_request, from the
# uncompressed callgrind format (calls= lines precede an inclusive cost line
# that is not the caller's own).
python3 - "$out" <<'PY'
import collections, os, re, sys
names, self_cost = {}, collections.Counter()
cur = cfn = None
skip = False
calls = 0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r"(c?fn)=(?:\((\d+)\))? ?(.*)$", line)
    if m:
        if m.group(2) is None:
            name = m.group(3)
        else:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            name = names.get(m.group(2), m.group(2))
        if m.group(1) == "fn":
            cur = name
        else:
            cfn = name
        continue
    m = re.match(r"calls=(\d+)", line)
    if m:
        if cfn == "tf_metrics_request":
            calls += int(m.group(1))
        skip = True
        continue
    if line[:1].isdigit() or line[:1] in "+-*":
        if skip:
            skip = False
            continue
        parts = line.split()
        if len(parts) >= 2 and cur is not None:
            self_cost[cur] += int(parts[1])
total = sum(self_cost.values())
if calls == 0:
    sys.exit("callgrind: no request counted")
print("requests=%d instructions=%d per_request=%d" % (calls, total, total // calls))
for name, cost in self_cost.most_common(int(os.environ.get("TOP", "12"))):
    print("%8d %5.1f%%  %s" % (cost // calls, 100.0 * cost / total, name))
PY
