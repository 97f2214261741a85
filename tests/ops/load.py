#!/usr/bin/env python3
"""Background load for the reload tests: loops TLS handshakes through the
proxy, each sending a line and expecting it echoed by the test backend, and
keeps one long-lived connection that echoes a line every 50 ms, until the
file STOP exists (it prints "started" once both have worked). Then prints "ok=N fail=M long=K long_fail=L" and the first
failures. Usage: load.py PORT SNI CAFILE STOP"""
import os
import socket
import ssl
import sys
import time


def connect(port, sni, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=sni)


def echo(sock, line):
    sock.sendall(line)
    got = b""
    while len(got) < len(line):
        more = sock.recv(4096)
        if not more:
            raise OSError("closed after %r" % got)
        got += more
    if got != line:
        raise OSError("echo mismatch %r" % got)


def main():
    port, sni, ca, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca)
    ok = fail = long_ok = long_fail = 0
    errors = []
    long_conn = connect(port, sni, ctx)
    last_long = 0.0
    started = False
    while not started or not os.path.exists(stop):
        if not started and ok > 0 and long_ok > 0:
            started = True
            print("started", flush=True)
        if fail > 0 and not started:
            break
        try:
            s = connect(port, sni, ctx)
            echo(s, b"ping %d\n" % ok)
            s.close()
            ok += 1
        except (OSError, ssl.SSLError) as e:
            fail += 1
            errors.append(repr(e))
        if time.monotonic() - last_long > 0.05:
            last_long = time.monotonic()
            try:
                echo(long_conn, b"long %d\n" % long_ok)
                long_ok += 1
            except (OSError, ssl.SSLError) as e:
                long_fail += 1
                errors.append("long: " + repr(e))
    print("ok=%d fail=%d long=%d long_fail=%d" % (ok, fail, long_ok, long_fail), flush=True)
    for e in errors[:5]:
        print(e, flush=True)


if __name__ == "__main__":
    main()
