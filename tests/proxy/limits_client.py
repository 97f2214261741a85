#!/usr/bin/env python3
"""limits.per_client.connections from one client address (test_limits.c):
  limits_client.py PORT CAFILE SNI LIMIT
Opens LIMIT TLS connections to 127.0.0.1:PORT and echoes a line through
each (the mode tcp test backend), then one more, which must be closed
before any handshake; then closes the first and opens another, which must
work once the proxy has seen the close (tried again, within a bound, while
the proxy may not have yet). Prints one line per step; exits 0 when every
step went as expected."""
import socket
import ssl
import sys
import time

PORT, CAFILE, SNI, LIMIT = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
WAIT_S = 30  # the harness's TF_PX_WAIT_MS
ctx = ssl.create_default_context(cafile=CAFILE)


def connect():
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=WAIT_S)
    try:
        return ctx.wrap_socket(raw, server_hostname=SNI)
    except BaseException:
        raw.close()
        raise


def echo(s, text):
    s.sendall(text + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        more = s.recv(4096)
        if not more:
            break
        got += more
    return got == text + b"\n"


def main():
    ok = True
    held = []
    for i in range(LIMIT):
        s = connect()
        held.append(s)
        works = echo(s, b"conn%d" % i)
        print("conn%d: %s" % (i, "echo ok" if works else "echo FAILED"))
        ok = ok and works
    try:
        extra = connect()
        print("over the limit: handshake done (WRONG)")
        extra.close()
        ok = False
    except (ssl.SSLError, ConnectionError, OSError) as e:
        if isinstance(e, socket.timeout):
            print("over the limit: timed out (WRONG: not closed at once)")
            ok = False
        else:
            print("over the limit: closed before the handshake (%s)" % type(e).__name__)
    held.pop(0).close()
    deadline = time.monotonic() + WAIT_S
    tries = 0
    while True:
        tries += 1
        try:
            s = connect()
        except (ssl.SSLError, ConnectionError, OSError):
            if time.monotonic() < deadline:
                continue
            print("after a close: still refused after %d tries (WRONG)" % tries)
            ok = False
            break
        works = echo(s, b"again")
        print("after a close: %s" % ("echo ok" if works else "echo FAILED"))
        ok = ok and works
        s.close()
        break
    for s in held:
        s.close()
    print("tries after the close: %d" % tries)
    return 0 if ok else 1


sys.exit(main())
