#!/usr/bin/env python3
"""HTTP/1.1 test backend for the HTTP proxy tests (stdlib only).

    echo_backend.py [NAME[,tls=CERT:KEY]]

With ",tls=CERT:KEY" after the name it speaks TLS (a TLS backend, SPEC §14).
Binds 127.0.0.1 on an ephemeral port, prints that port alone on the first
line of stdout, then serves each connection on its own (daemon) thread,
keep-alive as HTTP/1.1 says (HTTP/1.0: only with "Connection: keep-alive").
Stops when stdin reaches EOF or on SIGTERM.

Each request's body is read exactly: by Content-Length, or chunked with
trailers. "Expect: 100-continue" gets "HTTP/1.1 100 Continue" before the body
is read. Unless the target says otherwise, the answer is 200 with
Content-Length and a JSON body:

    {"backend": NAME, "method": ..., "target": ..., "version": "HTTP/1.1",
     "headers": [[name, value], ...],      # in order, names as received
     "trailers": [[name, value], ...],     # chunked requests only, else []
     "body_len": N, "body_sha256": hex,     # of the decoded body
     "conn": C,                             # connection id, 1, 2, ... per process
     "req_on_conn": n}                      # 1 for the first request on it

Every response carries "X-Backend: NAME". A request whose query has
"log=F" (any target) appends a line "METHOD TARGET" to the file F once its
body has been read and before it is answered: the requests that reached
the backend, counted by a test. A HEAD request gets the headers a
GET would get and no body. Special targets (the path, before any query):

    /status/NNN         status NNN with the JSON body; 204 and 304 without
                        body or Content-Length
    /probe?file=F       a line "probe HOST" appended to F; the status F.status
                        holds (200 when absent): health checks counted, toggled
    /chunked            the JSON body chunked (several chunks), with a
                        trailer "X-Trailer: done" (announced in "Trailer")
    /close-delimited    no Content-Length, "Connection: close", the JSON
                        body, then the connection is closed (HTTP/1.0 style)
    /slow?ms=N          waits N ms, then answers as usual
    /big?bytes=N        N bytes with Content-Length, byte i being i % 251,
                        streamed in 64 KiB writes
    /close-after        answers as usual (nothing announces it), then closes:
                        a pooled connection the backend closed
    /headers-only-head  "Content-Length: 1000" and X-Head: 1; GET sends 1000
                        bytes of 'h', HEAD nothing
    /split-head         the usual answer, its head sent in three pieces 50 ms
                        apart (cut inside a header line and inside a CRLF)
    /interim            "103 Early Hints" with a Link header and the usual
                        answer after it, in one write
    /bad-chunk          200, chunked, "5\r\nhello\r\nzz\r\n" with the head in
                        one write (an invalid chunk size), then closes
    /bad-chunk-later    the same, "zz\r\n" 100 ms after the head and the
                        first chunk: in a read of its own
    /cut-length         "Content-Length: 1000", 100 bytes of 'c', then closes
    /garbage-status     "HTPP/1.1 2OO OK" and a blank line, then closes
    /stall-close-delimited
                        no Content-Length, "Connection: close", 100 bytes
                        of 's', then nothing until the proxy closes (30 s)
    /ws, or any request with "Upgrade: websocket"
                        WebSocket handshake (101, Sec-WebSocket-Accept), then
                        text and binary messages are echoed (fragments
                        reassembled), pings answered with pongs, a close
                        answered with a close
"""
import base64
import hashlib
import itertools
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

NAME, _, TLS = (sys.argv[1] if len(sys.argv) > 1 else "echo").partition(",tls=")
MAX_HEAD = 1 << 20
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
           304: "Not Modified", 400: "Bad Request", 404: "Not Found",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}

_conn_ids = itertools.count(1)
_conn_lock = threading.Lock()


class Closed(Exception):
    """The client went away or sent something unusable."""


class Reader:
    """Buffered reads from a socket: lines, exact byte counts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed("eof")
        self.buf += data

    def until(self, sep, limit):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise Closed("too long")
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def at_eof(self):
        """True when nothing is buffered and the peer has closed."""
        if self.buf:
            return False
        try:
            self.fill()
        except (Closed, OSError):
            return True
        return False


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append([name, value.strip(" \t")])
    return method, target, version, headers


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def has_token(headers, name, token):
    for n, v in headers:
        if n.lower() == name and token in [t.strip().lower() for t in v.split(",")]:
            return True
    return False


def read_body(reader, headers):
    """Returns (body bytes, trailers)."""
    te = header(headers, "transfer-encoding")
    if te is not None and te.lower().split(",")[-1].strip() == "chunked":
        body = bytearray()
        while True:
            line = reader.until(b"\r\n", 4096)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += reader.exact(size)
            if reader.exact(2) != b"\r\n":
                raise Closed("bad chunk")
        trailers = []
        while True:
            line = reader.until(b"\r\n", 65536)
            if line == b"\r\n":
                break
            n, _, v = line[:-2].decode("latin-1").partition(":")
            trailers.append([n, v.strip(" \t")])
        return bytes(body), trailers
    length = header(headers, "content-length")
    return (reader.exact(int(length)) if length else b""), []


def send_head(sock, status, headers):
    out = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    out += ["%s: %s" % hv for hv in headers]
    sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))


def keep_alive(version, headers):
    if has_token(headers, "connection", "close"):
        return False
    if version == "HTTP/1.0":
        return has_token(headers, "connection", "keep-alive")
    return True


# ---- WebSocket (RFC 6455), server side --------------------------------------

def ws_read_frame(reader):
    b0, b1 = reader.exact(2)
    fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader.exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader.exact(8))[0]
    key = reader.exact(4) if masked else b"\0\0\0\0"
    data = bytes(c ^ key[i % 4] for i, c in enumerate(reader.exact(n)))
    return bool(fin), opcode, data


def ws_frame(opcode, data):
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + data


def websocket(sock, reader, headers):
    key = header(headers, "sec-websocket-key") or ""
    accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
    send_head(sock, 101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                          ("Sec-WebSocket-Accept", accept), ("X-Backend", NAME)])
    message, kind = b"", 0
    while True:
        fin, opcode, data = ws_read_frame(reader)
        if opcode == 8:
            sock.sendall(ws_frame(8, data[:2]))
            return
        if opcode == 9:
            sock.sendall(ws_frame(10, data))
            continue
        if opcode == 10:
            continue
        if opcode in (1, 2):
            message, kind = data, opcode
        else:
            message += data
        if fin:
            sock.sendall(ws_frame(kind, message))
            message = b""


# ---- requests ---------------------------------------------------------------

def describe(method, target, version, headers, body, trailers, conn, nreq):
    return json.dumps({
        "backend": NAME, "method": method, "target": target, "version": version,
        "headers": headers, "trailers": trailers, "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(), "conn": conn, "req_on_conn": nreq,
    }).encode() + b"\n"


def send_chunked(sock, status, base, body, head_only):
    send_head(sock, status, base + [("Transfer-Encoding", "chunked"), ("Trailer", "X-Trailer")])
    if head_only:
        return
    out = b""
    for i in range(0, len(body), 7):
        piece = body[i:i + 7]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    sock.sendall(out + b"0\r\nX-Trailer: done\r\n\r\n")


def send_big(sock, base, n, head_only):
    send_head(sock, 200, base + [("Content-Type", "application/octet-stream"),
                                 ("Content-Length", str(n))])
    if head_only:
        return
    block = bytes(i % 251 for i in range(251 * 261))  # 65,511 bytes, a whole number of periods
    sent = 0
    while sent < n:
        piece = block[:min(len(block), n - sent)]
        sock.sendall(piece)
        sent += len(piece)


def bad_chunk(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")


def bad_chunk_later(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    time.sleep(0.1)  # the subject: the bad chunk in a read after the head's
    sock.sendall(b"zz\r\n")


def cut_length(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"c" * 100)


def garbage_status(sock):
    sock.sendall(b"HTPP/1.1 2OO OK\r\n\r\n")


def stall_close_delimited(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"s" * 100)
    sock.settimeout(30)
    try:
        sock.recv(1)  # returns when the proxy closes
    except OSError:
        pass


# Backends that break their response; the connection closes after each.
MISBEHAVING = {
    "/bad-chunk": bad_chunk,
    "/bad-chunk-later": bad_chunk_later,
    "/cut-length": cut_length,
    "/garbage-status": garbage_status,
    "/stall-close-delimited": stall_close_delimited,
}


def respond(sock, req, conn, nreq):
    """Answers one request; returns False when the connection must close."""
    method, target, version, headers, body, trailers = req
    path = urlsplit(target).path
    query = parse_qs(urlsplit(target).query)
    head_only = method == "HEAD"
    alive = keep_alive(version, headers)
    base = [("X-Backend", NAME)]
    if not alive:
        base.append(("Connection", "close"))
    doc = describe(method, target, version, headers, body, trailers, conn, nreq)
    status = 200
    if "log" in query:
        with open(query["log"][0], "a") as f:
            f.write("%s %s\n" % (method, target))
    if path == "/slow":
        # The subject: a backend that takes its time (response timeouts).
        time.sleep(int(query.get("ms", ["0"])[0]) / 1000.0)
    if path.startswith("/status/"):
        status = int(path[len("/status/"):])
    if path == "/probe":
        # Health checks: each one counted in FILE, answered with the status
        # FILE.status holds (200 when absent), which a test toggles.
        log = query.get("file", [""])[0]
        with open(log, "a") as f:
            f.write("probe %s\n" % header(headers, "host"))
        try:
            with open(log + ".status") as f:
                status = int(f.read().strip() or "200")
        except OSError:
            status = 200
    if path == "/chunked":
        send_chunked(sock, status, base, doc, head_only)
        return alive
    if path == "/big":
        send_big(sock, base, int(query.get("bytes", ["0"])[0]), head_only)
        return alive
    if path == "/close-delimited":
        send_head(sock, 200, [("X-Backend", NAME), ("Connection", "close"),
                              ("Content-Type", "application/json")])
        if not head_only:
            sock.sendall(doc)
        return False
    if path in MISBEHAVING:
        MISBEHAVING[path](sock)
        return False
    if path == "/headers-only-head":
        send_head(sock, 200, base + [("X-Head", "1"), ("Content-Length", "1000")])
        if not head_only:
            sock.sendall(b"h" * 1000)
        return alive
    if status in (204, 304) or 100 <= status < 200:
        send_head(sock, status, base)
        return alive
    if path in ("/split-head", "/interim"):
        head = ["HTTP/1.1 200 OK"] + ["%s: %s" % hv for hv in base + [
            ("Content-Type", "application/json"), ("Content-Length", str(len(doc)))]]
        out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else doc)
        if path == "/interim":
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + out)
            return alive
        cuts = [out.index(b"Content-Type") + 7, out.index(b"\r\n\r\n") + 1]
        for a, b in zip([0] + cuts, cuts + [len(out)]):
            sock.sendall(out[a:b])
            time.sleep(0.05)  # the subject: each piece in a read of its own
        return alive
    send_head(sock, status, base + [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(doc)))])
    if not head_only:
        sock.sendall(doc)
    return alive and path != "/close-after"


def serve(sock):
    with _conn_lock:
        conn = next(_conn_ids)
    reader = Reader(sock)
    try:
        for nreq in itertools.count(1):
            if nreq > 1 and reader.at_eof():
                return
            method, target, version, headers = parse_head(reader.until(b"\r\n\r\n", MAX_HEAD))
            if (urlsplit(target).path == "/ws" or
                    (header(headers, "upgrade") or "").lower() == "websocket"):
                websocket(sock, reader, headers)
                return
            if (header(headers, "expect") or "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body, trailers = read_body(reader, headers)
            req = (method, target, version, headers, body, trailers)
            if not respond(sock, req, conn, nreq):
                return
    except (Closed, OSError, ValueError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)
    print(srv.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    ctx = None
    if TLS:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*TLS.split(":", 1))

    def serve_tls(sock):
        try:
            sock = ctx.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):
            sock.close()
            return
        serve(sock)

    while True:
        try:
            sock, _ = srv.accept()
        except OSError:
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_tls if ctx else serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
