#!/usr/bin/env python3
"""A backend for the backend-transport tests (unix sockets, TLS; stdlib only).

    upstream_backend.py SPEC

SPEC is comma-separated: the mode (`http` or `echo`), then any of
  unix=PATH       listen on this unix socket (else 127.0.0.1, an ephemeral port)
  tls=CERT:KEY    speak TLS (Python's ssl), recording the SNI each client sent
  log=FILE        http: append "conn=N sni=NAME path=PATH" for each request
  pp              with tls: a PROXY v1 line comes before the TLS bytes

Prints the port (0 for a unix socket) alone on the first line of stdout once
listening; stops when stdin reaches EOF. Connections are numbered 1, 2, ...
in this process. A connection may start with a PROXY v1 line (send_proxy).
  http  each request (head only, no body expected) gets 200 with the body
        "conn=N sni=NAME pp=LINE path=PATH" (NAME "-" when none was sent,
        LINE "-" without a PROXY header), keep-alive; GET /die closes the
        connection without an answer (a backend dying mid-way); GET /close
        answers "conn=N resumed=0|1" (whether its TLS session was resumed)
        with Connection: close, and closes
  echo  writes "conn=N sni=NAME pp=LINE" and a newline once, then echoes its input
"""
import os
import socket
import ssl
import sys
import threading

counter = [0]
lock = threading.Lock()


def parse(spec):
    parts = spec.split(",")
    opts = {"mode": parts[0]}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        opts[k] = v
    return opts


def read_pp(sock, buf):
    """Takes a PROXY v1 line off the front of buf, reading more as needed."""
    while len(buf) < 6:
        b = sock.recv(65536)
        if not b:
            return "-", buf
        buf += b
    if not buf.startswith(b"PROXY "):
        return "-", buf
    while b"\r\n" not in buf:
        b = sock.recv(65536)
        if not b:
            return "-", buf
        buf += b
    line, _, rest = buf.partition(b"\r\n")
    return line.decode().replace(" ", "_"), rest


def raw_pp(raw):
    """A PROXY v1 line read byte by byte, so that no TLS byte is taken."""
    line = b""
    while not line.endswith(b"\r\n") and len(line) < 108:
        b = raw.recv(1)
        if not b:
            break
        line += b
    return line.strip().decode().replace(" ", "_") if line.startswith(b"PROXY ") else "bad"


def serve_http(sock, n, sni, log, pp):
    buf = b""
    first = pp == "-"
    while True:
        while b"\r\n\r\n" not in buf:
            b = sock.recv(65536)
            if not b:
                return
            buf += b
            if first:
                pp, buf = read_pp(sock, buf)
                first = False
        head, _, buf = buf.partition(b"\r\n\r\n")
        path = head.split(b" ", 2)[1].decode()
        if path == "/die":
            return
        if path == "/close":
            body = ("conn=%d resumed=%d" % (n, int(getattr(sock, "session_reused", False)))).encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
            return
        if log:
            with open(log, "a") as f:
                f.write("conn=%d sni=%s path=%s\n" % (n, sni, path))
        body = ("conn=%d sni=%s pp=%s path=%s" % (n, sni, pp, path)).encode()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def serve_echo(sock, n, sni, pp):
    sock.sendall(("conn=%d sni=%s pp=%s\n" % (n, sni, pp)).encode())
    while True:
        b = sock.recv(65536)
        if not b:
            return
        sock.sendall(b)


def serve(raw, opts, ctx):
    with lock:
        counter[0] += 1
        n = counter[0]
    sock = raw
    try:
        sni, pp = "-", "-"
        if "pp" in opts:
            pp = raw_pp(raw)
        if ctx is not None:
            sock = ctx.wrap_socket(raw, server_side=True)
            sni = getattr(sock, "tf_sni", None) or "-"
        if opts["mode"] == "echo":
            serve_echo(sock, n, sni, pp)
        else:
            serve_http(sock, n, sni, opts.get("log"), pp)
    except (OSError, ssl.SSLError, ValueError, IndexError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    opts = parse(sys.argv[1] if len(sys.argv) > 1 else "http")
    ctx = None
    if "tls" in opts:
        cert, _, key = opts["tls"].partition(":")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if opts.get("maxtls") == "1.2":  # a backend that speaks TLS 1.2 only
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2

        def on_sni(obj, name, _ctx):
            obj.tf_sni = name
        ctx.sni_callback = on_sni
    if "unix" in opts:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(opts["unix"])
        except FileNotFoundError:
            pass
        srv.bind(opts["unix"])
        port = 0
    else:
        host = opts.get("host", "127.0.0.1")  # host=::1 or 127.0.0.2: another address
        srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, int(opts.get("port", "0"))))  # port=N: a restart in place
        port = srv.getsockname()[1]
    srv.listen(64)
    print(port, flush=True)

    def accept():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(s, opts, ctx), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()
    srv.close()


if __name__ == "__main__":
    main()
