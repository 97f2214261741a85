#!/usr/bin/env bash
# The README's first command: installs what is needed, builds tlsfront with
# the assembly wolfSSL, generates a demo PKI and configuration in ./demo
# (two tenants with their own certificates, a wildcard, a system
# certificate), shows `tlsfront check` and `tlsfront cert` judging them, then
# starts a demo backend and the proxy on 127.0.0.1:8443 and shows each
# certificate being chosen with openssl and curl. With a terminal it keeps
# the proxy running until Ctrl-C; without one (scripts, CI) it stops after
# the tour.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tlsfront >/dev/null
demo=$(bash scripts/demo-pki.sh demo)
tlsfront=build/proxy/tlsfront

show() {
    echo
    echo "\$ $*"
    "$@"
}
show $tlsfront version
show $tlsfront check -c "$demo/tlsfront.yaml"
show $tlsfront cert "$demo/certs/acme.pem" "$demo/certs/wildcard.pem"

if ! $tlsfront --help | grep -q '^  run '; then
    echo
    echo "(tlsfront run is not built yet: the live part of the demo starts with it)"
    exit 0
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A backend that says which Host it was asked for and what tlsfront told it
# about the client (mode http, the default: X-Forwarded-*).
python3 - <<'PY' &
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from the demo backend: you asked for %s%s "
                "(X-Forwarded-For: %s, X-Forwarded-Proto: %s)\n"
                % (self.headers.get("Host"), self.path, self.headers.get("X-Forwarded-For"),
                   self.headers.get("X-Forwarded-Proto"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("127.0.0.1", 8081), H).serve_forever()
PY
pids+=($!)
wait_port() { # PORT: until something accepts there, 5 s at most
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: nothing listens on 127.0.0.1:$1" >&2
    return 1
}
wait_port 8081
# The proxy's log and its access log (log.access: stdout) go to files so the
# tour stays readable.
$tlsfront run -c "$demo/tlsfront.yaml" 2>"$demo/tlsfront.log" >"$demo/access.log" &
pids+=($!)
wait_port 8443
echo
echo "tlsfront run -c $demo/tlsfront.yaml is up (its log: $demo/tlsfront.log, access log: $demo/access.log)"

subject() { # SNI -> the subject of the certificate served for it
    local sni=()
    [ -n "$1" ] && sni=(-servername "$1") || sni=(-noservername)
    openssl s_client -connect 127.0.0.1:8443 "${sni[@]}" </dev/null 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null
}
echo
echo "Which certificate each name gets (openssl s_client -connect 127.0.0.1:8443 -servername NAME):"
for name in portal.acme.example chat.acme.example portal.globex.example \
    shop.tenants.example unknown.example ""; do
    printf '  %-24s -> %s\n' "${name:-(no SNI)}" "$(subject "$name")"
done
show curl -sS --cacert "$demo/pki/root.crt" \
    --resolve portal.acme.example:8443:127.0.0.1 https://portal.acme.example:8443/hello
# Host must match the certificate of the connection (SPEC §7): another
# tenant's name over acme's connection is 421 Misdirected Request.
show curl -sS --cacert "$demo/pki/root.crt" -H "Host:portal.globex.example" \
    --resolve portal.acme.example:8443:127.0.0.1 https://portal.acme.example:8443/hello

if [ -t 0 ]; then
    echo
    echo "tlsfront is running on 127.0.0.1:8443 (config $demo/tlsfront.yaml). Try:"
    echo "  curl --cacert $demo/pki/root.crt --resolve chat.acme.example:8443:127.0.0.1 https://chat.acme.example:8443/"
    echo "Press Ctrl-C to stop."
    wait "${pids[1]}"
fi
