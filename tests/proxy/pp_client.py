#!/usr/bin/env python3
"""A client behind a pretend L4 balancer: a PROXY protocol header, then TLS
and one HTTP/1.1 GET (stdlib only). For test_proxyproto_e2e.c.

    pp_client.py PORT CAFILE SNI HEADER [SRC] [PATH]

HEADER: v1, v2 (with a TLV), v2-local, v1-split (the header in three
writes), garbage, none (TLS at once), silent (a header cut short, then
nothing). SRC: the client address the header carries (default 203.0.113.7;
an IPv6 one gives TCP6 / AF_INET6). Prints the response (status line and
body) or "closed: N bytes" when the proxy closed the connection, having
sent N bytes; exit 0 either way, 2 on a usage error.
"""
import ipaddress
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def header(kind, src, dst_port):
    ip = ipaddress.ip_address(src)
    dst = "10.1.2.3" if ip.version == 4 else "2001:db8::1"
    if kind.startswith("v1"):
        fam = "TCP4" if ip.version == 4 else "TCP6"
        return ("PROXY %s %s %s 40000 %d\r\n" % (fam, src, dst, dst_port)).encode()
    if kind == "v2-local":
        return SIG + bytes([0x20, 0x00, 0, 0])
    addrs = (ip.packed + ipaddress.ip_address(dst).packed + struct.pack("!HH", 40000, dst_port))
    tlv = bytes([0xEA, 0, 4]) + b"vpce"
    fam = 0x11 if ip.version == 4 else 0x21
    body = addrs + tlv
    return SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def drain(sock):
    """Bytes the proxy sends until it closes (bounded)."""
    sock.settimeout(20)
    got = b""
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                break
            got += b
    except (ConnectionError, socket.timeout):
        pass
    return got


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    port, cafile, sni, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    src = sys.argv[5] if len(sys.argv) > 5 else "203.0.113.7"
    path = sys.argv[6] if len(sys.argv) > 6 else "/"
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    if kind == "garbage":
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        print("closed: %d bytes" % len(drain(raw)))
        return 0
    if kind == "silent":
        raw.sendall(header("v1", src, port)[:10])
        print("closed: %d bytes" % len(drain(raw)))
        return 0
    if kind != "none":
        h = header(kind, src, port)
        if kind == "v1-split":
            for piece in (h[:5], h[5:20], h[20:]):
                raw.sendall(piece)
                time.sleep(0.05)  # separate reads on the proxy's side, not a synchronisation
        else:
            raw.sendall(h)
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        tls = ctx.wrap_socket(raw, server_hostname=sni)
        tls.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                     % (path, sni)).encode())
        resp = b""
        while True:
            b = tls.recv(65536)
            if not b:
                break
            resp += b
    except (ssl.SSLError, ConnectionError, socket.timeout) as e:
        print("closed: handshake failed (%s)" % type(e).__name__)
        return 0
    head, _, body = resp.partition(b"\r\n\r\n")
    print(head.split(b"\r\n")[0].decode())
    print(body.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
