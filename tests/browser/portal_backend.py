#!/usr/bin/env python3
"""The "portal" page for the browser test (tests/browser), stdlib only.

    portal_backend.py [NAME]

Binds 127.0.0.1 on an ephemeral port, prints that port alone on the first
line of stdout, and serves HTTP/1.1 with keep-alive, one thread per
connection, until stdin reaches EOF or SIGTERM. Every asset is generated
when the backend starts, each with a distinct URL and content:

    /                    the portal page: ASSETS_PER_KIND stylesheets, scripts
                         and PNG images (3 x 12 = 36 subresources), and an
                         inline script that, after the load event, collects
                         the navigation's and every resource's
                         nextHopProtocol, opens a WebSocket to
                         wss://<the page's host>/chat, sends a message, waits
                         for the echo and resolves window.tfResult with a JSON
                         text, also written into document.title and #result:
                         {"page": proto, "resources": [{"name", "protocol"}],
                          "chat": "echoed" | null, "error": null | text}
    /assets/style-N.css, /assets/app-N.js, /assets/img-N.png
    anything else        404

Every response carries "X-Backend: NAME" and "Cache-Control: no-store".
"""
import os
import signal
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "portal"
ASSETS_PER_KIND = 12

PAGE_SCRIPT = r"""
window.tfResult = new Promise(function (resolve) {
  window.addEventListener('load', function () {
    var nav = performance.getEntriesByType('navigation')[0];
    var out = {
      page: nav ? nav.nextHopProtocol : null,
      resources: performance.getEntriesByType('resource').map(function (e) {
        return {name: e.name, protocol: e.nextHopProtocol};
      }),
      scripts: window.tfScripts || 0,
      chat: null,
      error: null
    };
    var done = false;
    function finish() {
      if (done) return;
      done = true;
      var text = JSON.stringify(out);
      document.title = text;
      document.getElementById('result').textContent = text;
      resolve(text);
    }
    var message = 'hello from chromium ' + Date.now();
    var ws;
    try {
      ws = new WebSocket('wss://' + location.host + '/chat');
    } catch (e) {
      out.error = 'WebSocket: ' + e;
      finish();
      return;
    }
    ws.onopen = function () { ws.send(message); };
    ws.onmessage = function (ev) {
      if (ev.data === message) out.chat = 'echoed';
      else out.error = 'chat answered ' + JSON.stringify(ev.data);
      ws.close();
      finish();
    };
    ws.onerror = function () { out.error = out.error || 'WebSocket error'; };
    ws.onclose = function (ev) {
      if (out.chat === null) out.error = (out.error || 'WebSocket closed') + ' (code ' + ev.code + ')';
      finish();
    };
  });
});
"""


def png(width, height, rgb):
    """A PNG of one colour, from zlib and struct."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def make_assets():
    assets = {}
    for i in range(ASSETS_PER_KIND):
        assets["/assets/style-%d.css" % i] = (
            "text/css", (".tile-%d { display: inline-block; margin: 2px; padding: %dpx; "
                         "border: 1px solid #%02x%02x%02x; }\n" % (i, i % 5, i * 20, 80, 200 - i * 10)
                         ).encode())
        assets["/assets/app-%d.js" % i] = (
            "text/javascript",
            ("window.tfScripts = (window.tfScripts || 0) + 1; /* module %d */\n" % i).encode())
        assets["/assets/img-%d.png" % i] = (
            "image/png", png(16 + i, 16, (i * 20 % 256, 100, 255 - i * 20 % 256)))
    return assets


ASSETS = make_assets()


def make_page():
    head = ['<!DOCTYPE html>', '<html><head><meta charset="utf-8">',
            '<title>portal</title>', '<script>%s</script>' % PAGE_SCRIPT]
    body = ['</head><body>', '<h1>Portal</h1>', '<pre id="result"></pre>']
    for path, (kind, _) in sorted(ASSETS.items()):
        if kind == "text/css":
            head.append('<link rel="stylesheet" href="%s">' % path)
        elif kind == "text/javascript":
            head.append('<script src="%s"></script>' % path)
        else:
            body.append('<img class="tile" alt="" src="%s">' % path)
    return ("\n".join(head + body + ['</body></html>']) + "\n").encode()


PAGE = make_page()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the proxy pools its connections

    def log_message(self, *args):
        pass

    def answer(self, status, kind, body):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Backend", NAME)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.answer(200, "text/html; charset=utf-8", PAGE)
        elif path in ASSETS:
            self.answer(200, *ASSETS[path])
        else:
            self.answer(404, "text/plain", b"not found\n")

    do_HEAD = do_GET


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
