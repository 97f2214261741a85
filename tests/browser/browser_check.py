#!/usr/bin/env python3
"""A real browser through the proxy (tests/browser), stdlib only.

    browser_check.py URL --map NAME [--min-resources N] [--protocol P]
                     [--timeout S] [--chromium PATH]

Starts Debian's headless chromium (its own process group, a temporary
--user-data-dir removed afterwards, NAME resolved to 127.0.0.1 by
--host-resolver-rules, certificate errors ignored: the test PKI's root is
not in the browser's store), drives it through the DevTools protocol on
--remote-debugging-port=0 (the port chromium prints on stderr), opens URL
in a new page, waits for its load event, then awaits the page's own
window.tfResult (tests/browser/portal_backend.py) and checks it:

  - the page and at least N resources (default 30) were fetched with
    nextHopProtocol P (default "h2"),
  - the page's WebSocket chat echoed its message.

Prints the result (JSON) and "ok" with status 0, or "FAIL: why" with status
1. A browser that cannot start, or a page that never answers within
--timeout seconds (default 180) is a failure, never a skip. Every process it
started is gone when it returns.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


class Fail(Exception):
    pass


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise Fail("timed out")
        return left


# ---- a minimal WebSocket client (RFC 6455) for the DevTools endpoint --------

class WebSocket:
    def __init__(self, port, path, deadline):
        self.deadline = deadline
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=deadline.left())
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
        self.buf = b""
        head = self.until(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise Fail("DevTools WebSocket refused: %r" % head[:200])

    def fill(self):
        self.sock.settimeout(self.deadline.left())
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise Fail("timed out waiting for the browser")
        if not data:
            raise Fail("the browser closed the DevTools connection")
        self.buf += data

    def until(self, sep):
        while sep not in self.buf:
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        """The next text message (fragments joined)."""
        message = b""
        while True:
            b0, b1 = self.exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.exact(8))[0]
            data = self.exact(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise Fail("the browser closed the DevTools connection")
            if opcode in (9, 10):
                continue
            message += data
            if b0 & 0x80:
                return message.decode()


class DevTools:
    """Commands on the browser endpoint, or on a page's flat session."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Fail("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method, session):
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))


# ---- chromium ----------------------------------------------------------------

def start_chromium(path, profile, name, log):
    if shutil.which(path) is None:
        raise Fail("%s is not installed (scripts/install-deps.sh installs chromium)" % path)
    args = [path, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--mute-audio", "--metrics-recording-only",
            "--user-data-dir=" + profile, "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            "--host-resolver-rules=MAP %s 127.0.0.1" % name,
            "--ignore-certificate-errors", "about:blank"]
    # Its own process group: the renderers and helpers it forks go with it.
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE,
                            start_new_session=True)


def devtools_endpoint(proc, deadline, lines):
    """Reads chromium's stderr up to "DevTools listening on ws://...": (port, path)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    buf = b""
    while True:
        if not sel.select(deadline.left()):
            continue
        data = os.read(proc.stderr.fileno(), 65536)
        if not data:
            raise Fail("chromium exited (status %s) before listening:\n%s"
                       % (proc.wait(), "\n".join(lines[-30:])))
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            lines.append(text)
            marker = "DevTools listening on ws://"
            if marker in text:
                rest = text.split(marker, 1)[1]
                hostport, path = rest.split("/", 1)
                return int(hostport.rsplit(":", 1)[1]), "/" + path.strip()


def stop_chromium(proc, devtools):
    if proc.poll() is None and devtools is not None:
        try:
            devtools.call("Browser.close")
        except (Fail, OSError):
            pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    # The group: helpers that outlive the browser process.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass


def run_page(devtools, url, deadline):
    target = devtools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = devtools.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
    devtools.call("Page.enable", session=session)
    nav = devtools.call("Page.navigate", {"url": url}, session=session)
    if nav.get("errorText"):
        raise Fail("navigation to %s failed: %s" % (url, nav["errorText"]))
    devtools.wait_event("Page.loadEventFired", session)
    # window.tfResult settles once the chat has answered or failed.
    res = devtools.call("Runtime.evaluate",
                        {"expression": "window.tfResult", "awaitPromise": True,
                         "returnByValue": True,
                         "timeout": int(deadline.left() * 1000)}, session=session)
    if "exceptionDetails" in res:
        raise Fail("the page's script failed: %s" % json.dumps(res["exceptionDetails"])[:2000])
    value = res.get("result", {}).get("value")
    if not isinstance(value, str):
        raise Fail("the page gave no result: %s" % json.dumps(res)[:2000])
    return json.loads(value)


def check(result, min_resources, protocol):
    problems = []
    if result.get("page") != protocol:
        problems.append("the page came over %r, not %r" % (result.get("page"), protocol))
    resources = result.get("resources", [])
    if len(resources) < min_resources:
        problems.append("%d resources loaded, fewer than %d" % (len(resources), min_resources))
    for r in resources:
        if r.get("protocol") != protocol:
            problems.append("%s came over %r" % (r.get("name"), r.get("protocol")))
    if result.get("chat") != "echoed":
        problems.append("the chat did not echo: %s" % result.get("error"))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--map", required=True, help="the host name resolved to 127.0.0.1")
    ap.add_argument("--min-resources", type=int, default=30)
    ap.add_argument("--protocol", default="h2")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--chromium", default="chromium")
    a = ap.parse_args()
    deadline = Deadline(a.timeout)
    profile = tempfile.mkdtemp(prefix="tf-chromium-")
    lines = []
    proc = devtools = None
    try:
        with open(os.path.join(profile, "stdout.log"), "wb") as log:
            proc = start_chromium(a.chromium, os.path.join(profile, "profile"), a.map, log)
            port, path = devtools_endpoint(proc, deadline, lines)
            devtools = DevTools(WebSocket(port, path, deadline))
            result = run_page(devtools, a.url, deadline)
        print(json.dumps(result, indent=1))
        problems = check(result, a.min_resources, a.protocol)
        if problems:
            raise Fail("; ".join(problems))
        print("ok: page and %d resources over %s, chat echoed"
              % (len(result["resources"]), a.protocol))
        return 0
    except Fail as e:
        print("FAIL: %s" % e)
        if lines:
            print("chromium's stderr (last lines):\n" + "\n".join(lines[-20:]))
        return 1
    finally:
        if proc is not None:
            stop_chromium(proc, devtools)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
