#!/usr/bin/env python3
"""TLS test client for tests/proxy (Python's ssl module over OpenSSL).

  client.py bulk PORT SNI CAFILE MIB
      sends MIB MiB of random bytes to an echo backend through the proxy while
      reading the echo; prints "sent=SHA256 received=SHA256 bytes=N".
  client.py concurrent PORT SNI CAFILE N
      N connections open at once, each sends a line and reads it back;
      prints "ok=K of N".
  client.py wait-close PORT SNI CAFILE SECONDS
      handshakes, sends nothing, waits for the proxy to close; prints
      "closed" or "open".
  client.py limit PORT SNI CAFILE N
      opens N connections (the proxy's max_connections), then one more whose
      handshake must wait until one of the N closes; prints "waited-then-served"
      or what happened instead.
  client.py flood PORT N [LOG NEEDLE]
      opens N plain TCP connections that send nothing, holds them until LOG
      (the proxy's) shows NEEDLE (30 s at most; without LOG, not at all),
      closes them; prints "flooded".
  client.py stall PORT SNI CAFILE PID
      asks the backend for an endless stream, reads nothing for 2 s (the
      time a proxy without backpressure would fill its memory in), then
      reports the proxy's resident memory and reads for a moment;
      prints "rss_kib=N received=M".
  client.py stall-http PORT SNI CAFILE PID
      the same for mode http: GET /big?bytes=2000000000 from echo_backend.py.
  client.py rounds PORT SNI CAFILE N R
      N keep-alive connections open at once; R times, a GET / is sent on
      every one of them before any response is read, then all N responses
      (JSON from echo_backend.py) are read; prints "ok=K distinct=D": the
      responses that arrived, and how many backend connections carried them.
  client.py get PORT SNI CAFILE TARGET
      sends "GET TARGET HTTP/1.1" (Host: SNI, Connection: close), reads until
      the proxy ends the connection; prints "status=S body=N end=E": the
      status code (0: no response), the bytes after the head (chunk framing
      included) and how it ended: "close_notify", "truncated" (TCP closed
      without one) or "error NAME".
  client.py raw-idle PORT SECONDS
      plain TCP connect, sends nothing; prints "closed" or "open".
  client.py hold PORT SNI CAFILE SECONDS
      opens a tunnel, checks one echo, prints "ready" (flushed), then echoes
      a line every 0.1 s (traffic through a drain: the pace is the subject)
      until the proxy ends the connection; prints
      "echoes=N" and how it ended: "close_notify" (a clean TLS close) or
      "truncated" (TCP closed without one).
"""
import hashlib
import json
import os
import socket
import ssl
import sys
import select
import threading
import time


def tls_connect(port, sni, cafile, timeout=20):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=sni or None)


def bulk(port, sni, cafile, mib):
    """One thread, non-blocking: an SSL object must not be read and written
    from two threads at once."""
    total = mib * 1024 * 1024
    data = os.urandom(total)
    s = tls_connect(port, sni, cafile, timeout=60)
    s.setblocking(False)
    got = hashlib.sha256()
    sent = received = 0
    view = memoryview(data)
    deadline = time.monotonic() + 90
    while received < total and time.monotonic() < deadline:
        want_write = [s] if sent < total else []
        r, w, _ = select.select([s], want_write, [], 1.0)
        if w:
            try:
                sent += s.send(view[sent:sent + (1 << 16)])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        while True:
            try:
                chunk = s.recv(1 << 16)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not chunk:
                deadline = 0
                break
            got.update(chunk)
            received += len(chunk)
    print("sent=%s received=%s bytes=%d" % (hashlib.sha256(data).hexdigest(), got.hexdigest(),
                                            received))
    s.close()


def hold(port, sni, cafile, seconds):
    s = tls_connect(port, sni, cafile, timeout=seconds)
    s.sendall(b"ping\n")
    if s.recv(100) != b"ping\n":
        sys.exit("no echo")
    print("ready", flush=True)
    echoes, how = 0, "open"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            s.sendall(b"line\n")
            data = s.recv(100)
        except ssl.SSLEOFError:
            how = "truncated"
            break
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            how = "error " + type(e).__name__
            break
        if not data:
            how = "close_notify"
            break
        echoes += 1
        time.sleep(0.1)  # the pace of the traffic through the drain
    print("echoes=%d %s" % (echoes, how))


def get(port, sni, cafile, target):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    # A TCP close without close_notify raises instead of reading as an end.
    s = ctx.wrap_socket(raw, server_hostname=sni, suppress_ragged_eofs=False)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
              (target.encode(), sni.encode()))
    data, how = b"", "open"
    while True:
        try:
            chunk = s.recv(65536)
        except ssl.SSLEOFError:
            how = "truncated"
            break
        except (OSError, ssl.SSLError) as e:
            how = "error " + type(e).__name__
            break
        if not chunk:
            how = "close_notify"
            break
        data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if sep and head.startswith(b"HTTP/1.1 ") else 0
    print("status=%d body=%d end=%s" % (status, len(body), how))


def concurrent(port, sni, cafile, n):
    socks = []
    for i in range(n):
        socks.append(tls_connect(port, sni, cafile))
    ok = 0
    for i, s in enumerate(socks):
        msg = b"line %d\n" % i
        s.sendall(msg)
        buf = b""
        while len(buf) < len(msg):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        ok += buf == msg
    for s in socks:
        s.close()
    print("ok=%d of %d" % (ok, n))


def limit(port, sni, cafile, n):
    held = [tls_connect(port, sni, cafile) for _ in range(n)]
    result = {}

    def extra():
        try:
            s = tls_connect(port, sni, cafile, timeout=15)
            result["done"] = time.monotonic()
            s.close()
        except OSError as e:
            result["error"] = repr(e)

    t = threading.Thread(target=extra)
    t.start()
    # The subject: for a whole second the extra handshake must not complete
    # (no event says "still waiting"; a busy machine only makes it likelier).
    time.sleep(1.0)
    early = "done" in result or "error" in result
    released = time.monotonic()
    held.pop().close()
    t.join(20)
    if early:
        print("not held back: %r" % result)
    elif "done" in result and result["done"] >= released:
        print("waited-then-served")
    else:
        print("not served: %r" % result)
    for s in held:
        s.close()


def wait_log(path, needle, seconds):
    """Polls a file (a bounded loop: the standard library has no inotify)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if needle.encode() in f.read():
                return
        time.sleep(0.02)


def flood(port, n, log=None, needle=None):
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    if log is not None:
        wait_log(log, needle, 30)
    for s in socks:
        s.close()
    print("flooded")


def crowd(port, sni, cafile, n):
    """Up to n TLS connections opened and held, stopping at the first the
    proxy does not take within 0.3 s (it paused accepting), then at once
    (before timeouts.request_header) one request on each: the statuses."""
    socks = []
    for _ in range(n):
        try:
            socks.append(tls_connect(port, sni, cafile, timeout=0.3))
        except OSError:
            break
    req = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % sni.encode()
    for s in socks:
        s.sendall(req)
    counts = {}
    for s in socks:
        try:
            s.settimeout(10)
            line = s.recv(64).split(b"\r\n", 1)[0].decode("latin-1")
            status = line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none"
        except OSError:
            status = "error"
        counts[status] = counts.get(status, 0) + 1
        s.close()
    print("held=%d %s" % (len(socks), " ".join("%s=%d" % kv for kv in sorted(counts.items()))))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def stall(port, sni, cafile, pid, request=b"FLOOD\n"):
    s = tls_connect(port, sni, cafile)
    s.sendall(request)
    # The subject: what the proxy holds after 2 s of a reader that reads
    # nothing (without backpressure, hundreds of MiB).
    time.sleep(2)
    rss = rss_kib(pid)
    received = 0
    end = time.monotonic() + 1
    while time.monotonic() < end:
        received += len(s.recv(1 << 16))
    print("rss_kib=%d received=%d" % (rss, received))
    s.close()


def wait_close(sock, seconds):
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        print("closed")
    except socket.timeout:
        print("open")
    except (ssl.SSLError, OSError):
        print("closed")


def read_response(s, buf):
    """One response with a Content-Length body from s; returns (body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before a response head")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed inside a body")
        buf += chunk
    return buf[:length], buf[length:]


def rounds(port, sni, cafile, n, r):
    socks = [tls_connect(port, sni, cafile) for _ in range(n)]
    rests = [b""] * n
    ok, conns = 0, set()
    req = b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % sni.encode()
    for _ in range(r):
        for s in socks:
            s.sendall(req)
        for i, s in enumerate(socks):
            try:
                body, rests[i] = read_response(s, rests[i])
                conns.add(json.loads(body)["conn"])
                ok += 1
            except (OSError, ValueError, KeyError):
                pass
    for s in socks:
        s.close()
    print("ok=%d distinct=%d" % (ok, len(conns)))


def main():
    mode = sys.argv[1]
    if mode == "bulk":
        bulk(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "concurrent":
        concurrent(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "wait-close":
        s = tls_connect(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        wait_close(s, float(sys.argv[5]))
    elif mode == "limit":
        limit(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "crowd":
        crowd(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6])
    elif mode == "stall":
        stall(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "hold":
        hold(int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]))
    elif mode == "stall-http":
        req = b"GET /big?bytes=2000000000 HTTP/1.1\r\nHost: %s\r\n\r\n" % sys.argv[3].encode()
        stall(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), req)
    elif mode == "rounds":
        rounds(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif mode == "get":
        get(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif mode == "raw-idle":
        s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
        wait_close(s, float(sys.argv[3]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
