#!/usr/bin/env bash
# tests/proxy/echo_backend.py and ws_client.py on their own, with curl: the
# tools the HTTP proxy tests rely on must be right before they judge the
# proxy. Prints one line per check; exits 1 on the first failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/tf-echo-test-XXXXXX)
pid=
cleanup() {
    exec 3>&- 4<&- 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}
ok() { echo "ok: $*"; }

# The backend's stdin is a FIFO we hold open on fd 3: closing it stops it.
# Its stdout is a FIFO too: its first line, the port it bound, is read as
# soon as it is printed (30 s at most).
mkfifo "$tmp/in" "$tmp/out"
python3 "$here/echo_backend.py" test-echo <"$tmp/in" >"$tmp/out" &
pid=$!
exec 3>"$tmp/in" 4<"$tmp/out"
port=
read -r -t 30 -u 4 port
[ -n "$port" ] || fail "the backend printed no port"
base="http://127.0.0.1:$port"
C="curl -sS --max-time 10"

# json FILE EXPR: evaluates a Python expression over the JSON document(s) in
# FILE (one per line, as a list `d`); fails unless it is true.
json() {
    python3 - "$1" "$2" <<'EOF' || fail "$2 (on $(head -c 600 "$1"))"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}

$C -H 'X-A: 1' -H 'X-B: two' "$base/x?y=1" >"$tmp/o" || fail "GET"
json "$tmp/o" 'd[0]["backend"]=="test-echo" and d[0]["method"]=="GET" and d[0]["target"]=="/x?y=1" and d[0]["version"]=="HTTP/1.1"'
json "$tmp/o" '[h for h in d[0]["headers"] if h[0].startswith("X-")]==[["X-A","1"],["X-B","two"]] and d[0]["req_on_conn"]==1'
ok "GET answered with the request described"

$C "$base/a" "$base/b" >"$tmp/o" || fail "keep-alive"
json "$tmp/o" 'd[0]["conn"]==d[1]["conn"] and [x["req_on_conn"] for x in d]==[1,2]'
ok "keep-alive: two requests on one connection"

$C "$base/close-after" "$base/b" >"$tmp/o" || fail "close-after"
json "$tmp/o" 'd[0]["conn"]!=d[1]["conn"] and d[1]["req_on_conn"]==1'
ok "/close-after closes the connection after answering"

head -c 100000 /dev/urandom >"$tmp/body"
sum=$(sha256sum <"$tmp/body" | cut -d' ' -f1)
$C --data-binary "@$tmp/body" "$base/post" >"$tmp/o" || fail "POST"
json "$tmp/o" "d[0]['body_len']==100000 and d[0]['body_sha256']=='$sum'"
$C -H 'Transfer-Encoding: chunked' --data-binary "@$tmp/body" "$base/post" >"$tmp/o" || fail "chunked POST"
json "$tmp/o" "d[0]['body_len']==100000 and d[0]['body_sha256']=='$sum' and d[0]['trailers']==[]"
ok "bodies read exactly by Content-Length and chunked"

printf 'POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n' |
    python3 -c 'import socket,sys
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read())
d=b""
while True:
    x=s.recv(65536)
    if not x: break
    d+=x
sys.stdout.buffer.write(d.split(b"\r\n\r\n",1)[1])' "$port" >"$tmp/o" || fail "trailers"
json "$tmp/o" 'd[0]["trailers"]==[["X-T","1"]] and d[0]["body_len"]==3'
ok "request trailers reported"

$C -v -H 'Expect: 100-continue' --data-binary "@$tmp/body" "$base/continue" >"$tmp/o" 2>"$tmp/v" || fail "expect"
grep -q '< HTTP/1.1 100 Continue' "$tmp/v" || fail "no 100 Continue"
json "$tmp/o" 'd[0]["body_len"]==100000'
ok "Expect: 100-continue gets 100 Continue"

code=$($C -o "$tmp/o" -w '%{http_code}' "$base/status/404") && [ "$code" = 404 ] || fail "status 404: $code"
$C -D "$tmp/h" -o "$tmp/o" "$base/status/204" || fail "204"
grep -q '^HTTP/1.1 204' "$tmp/h" && ! grep -qi '^content-length' "$tmp/h" && [ ! -s "$tmp/o" ] || fail "204 with a body"
ok "/status/NNN"

$C --raw -D "$tmp/h" "$base/chunked" >"$tmp/raw" || fail "chunked"
grep -qi '^transfer-encoding: chunked' "$tmp/h" || fail "not chunked"
grep -q 'X-Trailer: done' "$tmp/raw" || fail "no trailer"
$C "$base/chunked" >"$tmp/o" && json "$tmp/o" 'd[0]["target"]=="/chunked"'
ok "/chunked with a trailer"

$C -D "$tmp/h" "$base/close-delimited" >"$tmp/o" || fail "close-delimited"
! grep -qi '^content-length' "$tmp/h" || fail "close-delimited has a length"
json "$tmp/o" 'd[0]["target"]=="/close-delimited"'
ok "/close-delimited"

$C "$base/big?bytes=1000000" >"$tmp/o" || fail "big"
python3 -c 'import sys
d=open(sys.argv[1],"rb").read()
sys.exit(0 if len(d)==1000000 and d==bytes(i%251 for i in range(1000000)) else 1)' "$tmp/o" || fail "big pattern"
ok "/big streams the pattern"

start=$(date +%s%N)
$C "$base/slow?ms=300" >"$tmp/o" || fail "slow"
[ $(( ($(date +%s%N) - start) / 1000000 )) -ge 300 ] || fail "slow was fast"
ok "/slow waits"

$C -I "$base/headers-only-head" >"$tmp/h" || fail "HEAD"
grep -qi '^content-length: 1000' "$tmp/h" || fail "HEAD length"
$C -I "$base/x" >"$tmp/h" && grep -qi '^content-length: [1-9]' "$tmp/h" || fail "HEAD on /x"
ok "HEAD: headers only"

out=$(python3 "$here/ws_client.py" 127.0.0.1 "$port" a.example - /ws 20 --no-tls) || fail "ws: $out"
[ "$out" = "ok 20" ] || fail "ws: $out"
out=$(python3 "$here/ws_client.py" 127.0.0.1 "$port" a.example - /chat 2 --hold 0.5 --no-tls) || fail "ws hold: $out"
[[ "$out" =~ ^ok\ [3-6]$ ]] || fail "ws hold: $out"
ok "WebSocket echo, with and without --hold"

# Through TLS: tlsfront (a mode: tcp tenant) in front of the backend, so the
# client's TLS side (SNI, verification against the CA) is exercised too.
if [ -n "${TF_TLSFRONT:-}" ] && [ -n "${TF_BUILD_DIR:-}" ]; then
    demo="$TF_BUILD_DIR/tests/proxy-demo"
    mkdir -p "$demo"
    flock "$demo.lock" sh -c "[ -f '$demo/tlsfront.yaml' ] || bash '$here/../../scripts/demo-pki.sh' '$demo' >/dev/null" ||
        fail "demo PKI"
    printf '%s\n' "log:" "  level: warn" "  access: off" "listen:" "  https: [\"127.0.0.1:0\"]" \
        "tls:" "  certs: [\"$demo/certs\"]" "  default_cert: $demo/certs/system.pem" \
        "tenants:" "  acme:" "    hosts: [\"portal.acme.example\"]" \
        "    backends: [\"127.0.0.1:$port\"]" "    mode: tcp" >"$tmp/tlsfront.yaml"
    # Port 0: tlsfront writes the port it got into the ready file
    # (docs/OPERATIONS.md), renamed into place whole; a bounded wait for the
    # file to appear.
    TLSFRONT_READY_FILE="$tmp/ready" "$TF_TLSFRONT" run -c "$tmp/tlsfront.yaml" \
        >"$tmp/tlsfront.log" 2>&1 &
    tpid=$!
    for _ in $(seq 600); do
        [ -s "$tmp/ready" ] || ! kill -0 "$tpid" 2>/dev/null && break
        sleep 0.05
    done
    tport=$(sed -n 's/^https .*:\([0-9]*\)$/\1/p' "$tmp/ready" 2>/dev/null | head -n 1)
    [ -n "$tport" ] || fail "tlsfront reported no port ($(tail -n 5 "$tmp/tlsfront.log"))"
    out=$(python3 "$here/ws_client.py" 127.0.0.1 "$tport" portal.acme.example "$demo/pki/root.crt" /ws 10)
    rc=$?
    bad=$(python3 "$here/ws_client.py" 127.0.0.1 "$tport" portal.acme.example "$demo/certs/system.pem" /ws 1)
    badrc=$?
    kill "$tpid" 2>/dev/null
    wait "$tpid" 2>/dev/null
    [ $rc -eq 0 ] && [ "$out" = "ok 10" ] || fail "ws over TLS: $out ($(tail -n 5 "$tmp/tlsfront.log"))"
    [ $badrc -eq 1 ] && [[ "$bad" == error:* ]] || fail "ws with a wrong CA file: $bad"
    ok "WebSocket over TLS through tlsfront; a wrong CA is an error"
fi

# A watchdog bounds the wait: a backend it had to kill did not stop by itself.
exec 3>&- 4<&-
(sleep 10 && kill "$pid") >/dev/null 2>&1 &
dog=$!
wait "$pid"
rc=$?
kill "$dog" 2>/dev/null
[ $rc -eq 0 ] || fail "the backend did not stop on stdin EOF (status $rc)"
pid=
ok "stops on stdin EOF"
echo "all ok"
