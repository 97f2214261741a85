#!/usr/bin/env python3
"""Runs `tlsfront run` with NOTIFY_SOCKET pointing at a datagram socket bound here, and checks
the sd_notify messages it sends, in order: READY=1 once serving; on SIGHUP RELOADING=1 (with
MONOTONIC_USEC) then READY=1; the same for POST /reload on the admin API (CONFIG must enable
it, on port 0: its address is read from TLSFRONT_READY_FILE) and around a reload of a broken
configuration, which is refused (the old one keeps serving); STOPPING=1 on SIGTERM; then exit
status 0.

usage: notify_driver.py TLSFRONT CONFIG DIR
  CONFIG is rewritten (a syntax error appended, then removed) for the refused reload.
Prints one line per check; exits 1 on the first failure."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

TIMEOUT = 30.0


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    binary, config, tmp = sys.argv[1:4]
    # sd_notify takes an absolute path (or an abstract name) only.
    path = os.path.join(os.path.abspath(tmp), "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    ready_file = os.path.join(tmp, "ready")
    env = dict(os.environ, NOTIFY_SOCKET=path, TLSFRONT_READY_FILE=ready_file)
    log = open(os.path.join(tmp, "run.log"), "wb")
    proc = subprocess.Popen([binary, "run", "-c", config], env=env, stdout=log, stderr=log)
    seen = []

    def expect(first_field, what):
        """The next message, whose first line must be first_field."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                fail("no %s within %.0f s; got %r so far; log:\n%s"
                     % (first_field, TIMEOUT, seen, open(log.name).read()))
            sock.settimeout(left)
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            seen.append(data.split("\n")[0])
            if not data.startswith(first_field + "\n") and data != first_field:
                proc.kill()
                fail("expected %s (%s), got %r" % (first_field, what, data))
            return fields

    try:
        f = expect("READY=1", "start-up")
        if "STATUS" not in f or "1 https" not in f["STATUS"]:
            fail("READY=1 without a STATUS naming the listener: %r" % f)
        print("ok: READY=1 once serving (STATUS=%s)" % f["STATUS"])

        proc.send_signal(signal.SIGHUP)
        f = expect("RELOADING=1", "SIGHUP")
        now = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        usec = int(f.get("MONOTONIC_USEC", "0"))
        if not 0 < now - usec < TIMEOUT * 1e6:
            fail("MONOTONIC_USEC=%s is not CLOCK_MONOTONIC now (%d)" % (usec, now))
        f = expect("READY=1", "after the reload")
        if "reloaded" not in f.get("STATUS", ""):
            fail("READY=1 after a good reload says %r" % f)
        print("ok: SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1")

        # Written before READY=1 was sent.
        admin = [l.split()[1] for l in open(ready_file) if l.startswith("admin ")]
        if not admin:
            fail("no admin listener in the ready file: enable admin in CONFIG")
        req = urllib.request.Request("http://%s/reload" % admin[0], method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            if resp.status != 200:
                fail("POST /reload: %d" % resp.status)
        expect("RELOADING=1", "POST /reload")
        expect("READY=1", "after POST /reload")
        print("ok: POST /reload: RELOADING=1, then READY=1")

        good = open(config).read()
        with open(config, "w") as out:
            out.write(good + "\nnot: [valid\n")
        proc.send_signal(signal.SIGHUP)
        expect("RELOADING=1", "SIGHUP with a broken configuration")
        f = expect("READY=1", "after the refused reload")
        if "failed" not in f.get("STATUS", ""):
            fail("READY=1 after a refused reload says %r" % f)
        with open(config, "w") as out:
            out.write(good)
        print("ok: a refused reload: RELOADING=1, then READY=1 (the old configuration serves)")

        proc.send_signal(signal.SIGTERM)
        expect("STOPPING=1", "SIGTERM")
        try:
            status = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("tlsfront did not exit within %.0f s of SIGTERM" % TIMEOUT)
        text = open(log.name).read()
        if status != 0 or "Sanitizer" in text or "runtime error:" in text:
            fail("tlsfront exited %d; log:\n%s" % (status, text))
        sock.settimeout(0)
        try:
            extra = sock.recv(4096)
            fail("a message after STOPPING=1: %r" % extra)
        except BlockingIOError:
            pass
        print("ok: SIGTERM: STOPPING=1, then exit 0; messages in order: %s" % " ".join(seen))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
