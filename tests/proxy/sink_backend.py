#!/usr/bin/env python3
"""A backend that accepts connections and never reads from them (stdlib
only): a request body sent to it fills the socket buffers and stops, which
is how tests hold an exchange that is not reading its client.

    sink_backend.py [NAME]

Binds 127.0.0.1 on an ephemeral port, prints that port alone on the first
line of stdout, and stops when stdin reaches EOF or on SIGTERM.
"""
import signal
import socket
import sys
import threading


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)
    print(srv.getsockname()[1], flush=True)
    held = []

    def accept():
        while True:
            conn, _ = srv.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            held.append(conn)  # kept open, never read

    threading.Thread(target=accept, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdin.read()  # until EOF: the test went away


if __name__ == "__main__":
    main()
