#!/usr/bin/env python3
"""WebSocket test client (stdlib only: a minimal RFC 6455 client).

    ws_client.py HOST PORT SNI CAFILE PATH N [--hold SECONDS] [--no-tls]

Connects to HOST:PORT with TLS (SNI, certificate verified against CAFILE
and the name SNI), sends "GET PATH" with "Host: SNI" and the WebSocket
upgrade, checks the 101 and its Sec-WebSocket-Accept, then sends N text
messages (masked, as a client must) and checks that each comes back
unchanged. With --hold SECONDS it then keeps sending one message every
0.2 s for that long, checking each echo (to hold a tunnel open across a
reload). It ends with a close handshake and prints "ok TOTAL" (the number
of messages echoed) with exit status 0, or "error: WHAT" with status 1.
--no-tls talks plain TCP (CAFILE is then ignored), to test a backend
directly.
"""
import argparse
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = 10.0


class Fail(Exception):
    pass


def recv_exact(sock, buf, n):
    """Returns (n bytes, rest of buf), reading more as needed."""
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise Fail("connection closed by the peer")
        buf += data
    return buf[:n], buf[n:]


def connect(args):
    raw = socket.create_connection((args.host, args.port), timeout=TIMEOUT)
    if args.no_tls:
        return raw
    ctx = ssl.create_default_context(cafile=args.cafile)
    return ctx.wrap_socket(raw, server_hostname=args.sni)


def handshake(sock, args):
    key = base64.b64encode(os.urandom(16))
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % (args.path, args.sni, key.decode()))
    sock.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise Fail("closed during the handshake: %r" % buf[:200])
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split(" ")[1:2] != ["101"]:
        raise Fail("no upgrade: %s" % lines[0])
    want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    got = [l.split(":", 1)[1].strip() for l in lines[1:]
           if l.lower().startswith("sec-websocket-accept:")]
    if got != [want]:
        raise Fail("bad Sec-WebSocket-Accept: %r" % got)
    return rest


def client_frame(opcode, data):
    """A masked client frame (RFC 6455 §5.2); h2_client.py sends it in DATA."""
    mask = os.urandom(4)
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def send_frame(sock, opcode, data):
    sock.sendall(client_frame(opcode, data))


def read_frame(sock, buf):
    """Returns (opcode, payload, rest). Server frames are never masked."""
    (b0, b1), buf = recv_exact(sock, buf, 2)
    if b1 & 0x80:
        raise Fail("masked frame from the server")
    n = b1 & 0x7F
    if n == 126:
        ext, buf = recv_exact(sock, buf, 2)
        n = struct.unpack("!H", ext)[0]
    elif n == 127:
        ext, buf = recv_exact(sock, buf, 8)
        n = struct.unpack("!Q", ext)[0]
    if not b0 & 0x80:
        raise Fail("fragmented reply (not expected from the echo backend)")
    data, buf = recv_exact(sock, buf, n)
    return b0 & 0x0F, data, buf


def echo(sock, buf, i):
    msg = ("message %d %s" % (i, "x" * (i % 7))).encode()
    send_frame(sock, 1, msg)
    while True:
        op, data, buf = read_frame(sock, buf)
        if op == 9:
            send_frame(sock, 10, data)
            continue
        if op != 1 or data != msg:
            raise Fail("message %d: got opcode %d %r" % (i, op, data[:80]))
        return buf


def close(sock, buf):
    send_frame(sock, 8, struct.pack("!H", 1000))
    while True:
        op, _, buf = read_frame(sock, buf)
        if op == 8:
            return


def run(args):
    sock = connect(args)
    buf = handshake(sock, args)
    total = 0
    for i in range(args.n):
        buf = echo(sock, buf, total)
        total += 1
    deadline = time.monotonic() + args.hold
    while time.monotonic() < deadline:
        time.sleep(0.2)  # --hold: a message every 0.2 s, the pace is the subject
        buf = echo(sock, buf, total)
        total += 1
    close(sock, buf)
    sock.close()
    return total


def main():
    p = argparse.ArgumentParser(description="WebSocket echo check")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("sni")
    p.add_argument("cafile")
    p.add_argument("path")
    p.add_argument("n", type=int)
    p.add_argument("--hold", type=float, default=0.0)
    p.add_argument("--no-tls", action="store_true")
    args = p.parse_args()
    try:
        total = run(args)
    except (Fail, OSError, ssl.SSLError, ValueError) as e:
        print("error: %s" % e)
        return 1
    print("ok %d" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
