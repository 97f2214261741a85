#!/usr/bin/env python3
"""Drives `openssl s_client` for a test: one line in, wait for its echo.

    s_client_echo.py TEXT SECONDS -- openssl s_client ARGS...

Starts the command, writes TEXT and a newline to its stdin and keeps stdin
open until TEXT appears in what the command prints (its stdout and stderr),
the command exits, or SECONDS pass; then closes stdin (with -no_ign_eof, or
without -quiet, s_client then closes the connection and exits) and prints
everything the command printed. Exits 0 when TEXT came back, 1 otherwise.

It replaces `(echo TEXT; sleep N) | openssl s_client ...`, where N guessed
how long the echo takes: too short on a busy machine, wasted on a quiet one.
"""
import os
import select
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit(__doc__)
    text = sys.argv[1].encode()
    deadline = time.monotonic() + float(sys.argv[2])
    p = subprocess.Popen(sys.argv[4:], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    p.stdin.write(text + b"\n")
    p.stdin.flush()
    out = b""
    fd = p.stdout.fileno()
    eof = False
    while text not in out:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            eof = True
            break
        out += chunk
    found = text in out
    try:
        p.stdin.close()
    except BrokenPipeError:
        pass
    # What the command prints while it closes (session details, errors).
    end = time.monotonic() + 10
    while not eof and select.select([fd], [], [], max(0, end - time.monotonic()))[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    try:
        p.wait(max(0.1, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.exit(0 if found else 1)


if __name__ == "__main__":
    main()
