#!/usr/bin/env python3
"""Test backend for tests/proxy: binds 127.0.0.1 on an ephemeral port, prints
that port, a "black hole" port (connects to it never complete) and a dead
port (bound, never listening: connects are refused) on one line of stdout,
then serves every connection on its own thread:
  - a connection whose first bytes are an HTTP request line gets a small
    HTTP/1.1 response naming this backend, then is closed;
  - a connection that starts with "FLOOD\n" is sent data without end (for
    backpressure tests) until the peer goes away;
  - anything else is echoed back until the client ends its output, after
    which the backend ends its own.
Stops when stdin closes or on SIGTERM."""
import os
import socket
import sys
import threading

NAME = sys.argv[1] if len(sys.argv) > 1 else "backend"


def http_reply(conn, first):
    data = first
    while b"\r\n\r\n" not in data and len(data) < 65536:
        more = conn.recv(65536)
        if not more:
            break
        data += more
    body = ("hello from %s\n" % NAME).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(body), body))


def serve(conn):
    try:
        first = conn.recv(65536)
        if first.startswith((b"GET ", b"HEAD ")):
            http_reply(conn, first)
            return
        if first.startswith(b"FLOOD\n"):
            block = b"f" * 65536
            while True:
                conn.sendall(block)
        data = first
        while data:
            conn.sendall(data)
            data = conn.recv(65536)
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)
    # A port that never completes a connect: its accept queue is full (one
    # connection in, never accepted) so new SYNs are dropped.
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    fillers = []
    for _ in range(2):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(hole.getsockname())
        fillers.append(f)
    # A port nobody listens on, held for the backend's life: unlike a port
    # bound and closed again, no other process can take it meanwhile.
    dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    dead.bind(("127.0.0.1", 0))
    print(srv.getsockname()[1], hole.getsockname()[1], dead.getsockname()[1], flush=True)
    # The test's end of stdin closes when it stops (or dies): exit with it.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
