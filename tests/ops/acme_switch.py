#!/usr/bin/env python3
"""Client load for the ACME switch-over test: loops TLS handshakes with SNI
(the chain not verified: the name is served a certificate of the demo CA
first, then one of pebble's) and one HTTP GET each through the proxy, until
the file STOP exists or LIMIT seconds have passed. Prints "started" after
the first success, "cert SHA256 at N" each time the served certificate (the
SHA-256 of its DER) differs from the one before, and at the end
"ok=N fail=M" and the first failures. Usage: acme_switch.py PORT SNI STOP LIMIT"""
import hashlib
import os
import socket
import ssl
import sys
import time


def one(port, sni, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as s:
        der = s.getpeercert(binary_form=True)
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % sni.encode())
        got = b""
        while True:
            more = s.recv(4096)
            if not more:
                break
            got += more
    if not got.startswith(b"HTTP/1.1 200") or b"hello from" not in got:
        raise OSError("unexpected answer %r" % got[:80])
    return hashlib.sha256(der).hexdigest()


def main():
    port, sni, stop, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ok = fail = 0
    last = None
    errors = []
    end = time.monotonic() + limit
    while not os.path.exists(stop) and time.monotonic() < end:
        try:
            fp = one(port, sni, ctx)
            ok += 1
            if fp != last:
                print("cert %s at %d" % (fp, ok), flush=True)
                last = fp
            if ok == 1:
                print("started", flush=True)
        except (OSError, ssl.SSLError) as e:
            fail += 1
            errors.append(repr(e))
    print("ok=%d fail=%d" % (ok, fail), flush=True)
    for e in errors[:5]:
        print(e, flush=True)


if __name__ == "__main__":
    main()
