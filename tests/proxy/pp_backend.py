#!/usr/bin/env python3
"""A backend behind tlsfront's send_proxy (stdlib only): every connection
must start with a PROXY protocol header; it answers what the header said.

    pp_backend.py http|echo

Binds 127.0.0.1 on an ephemeral port and prints the port alone on the first
line of stdout; stops when stdin reaches EOF. Per connection (numbered 1,
2, ... in this process), after the header:
  http  each request (head only; no body expected) gets 200 with the body
        "conn=N v=V src=ADDR:PORT dst=ADDR:PORT", keep-alive
  echo  writes that line once, then echoes what it reads
A connection without a valid header gets "conn=N bad-header" and is closed.
"""
import ipaddress
import socket
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
counter = [0]
lock = threading.Lock()


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return buf


def read_header(sock):
    first = read_exact(sock, 1)
    if first == b"P":
        line = first
        while not line.endswith(b"\r\n") and len(line) < 108:
            line += read_exact(sock, 1)
        parts = line.decode().split()
        if parts[1] == "UNKNOWN":
            return "v=1 unknown"
        return "v=1 src=%s:%s dst=%s:%s" % (parts[2], parts[4], parts[3], parts[5])
    rest = read_exact(sock, 15)
    h = first + rest
    if h[:12] != SIG:
        return None
    length = struct.unpack("!H", h[14:16])[0]
    body = read_exact(sock, length)
    if h[12] & 15 == 0:
        return "v=2 local"
    if h[13] >> 4 == 1:
        src, dst = ipaddress.ip_address(body[0:4]), ipaddress.ip_address(body[4:8])
        sp, dp = struct.unpack("!HH", body[8:12])
    else:
        src, dst = ipaddress.ip_address(body[0:16]), ipaddress.ip_address(body[16:32])
        sp, dp = struct.unpack("!HH", body[32:36])
    return "v=2 src=%s:%d dst=%s:%d" % (src, sp, dst, dp)


def serve(sock, mode):
    with lock:
        counter[0] += 1
        n = counter[0]
    try:
        what = read_header(sock)
        if what is None:
            sock.sendall(b"conn=%d bad-header\n" % n)
            return
        line = ("conn=%d %s" % (n, what)).encode()
        if mode == "echo":
            sock.sendall(line + b"\n")
            while True:
                b = sock.recv(65536)
                if not b:
                    return
                sock.sendall(b)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                b = sock.recv(65536)
                if not b:
                    return
                buf += b
            _, _, buf = buf.partition(b"\r\n\r\n")
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(line), line))
    except (EOFError, ConnectionError, ValueError, IndexError):
        pass
    finally:
        sock.close()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "http"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)

    def accept():
        while True:
            try:
                s, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(s, mode), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()
    srv.close()


if __name__ == "__main__":
    main()
