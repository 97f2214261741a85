#!/usr/bin/python3
# Seed corpus for tests/fuzz/fuzz_h2.c: client sessions written with the h2
# library (Debian's python3-h2: run with /usr/bin/python3, not a pyenv
# python). Each seed is two control bytes (see fuzz_h2.c: how the input is
# cut into reads, the backend's canned answer, the SNI, how the connection
# ends) followed by the bytes a client sends. Without the "raw" control bit
# the fuzzer sends the connection preface itself, so the seeds leave it out.
#
#   /usr/bin/python3 tests/fuzz/corpus/h2/make_seeds.py   # rewrites the seeds
import os

import h2.config
import h2.connection
import h2.events
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Control byte 0 (fuzz_h2.c): bits 0-1 split, bit 2 slow writer, bits 3-4
# end, bits 5-7 the backend's answer; bit 0 of byte 1 raw (no preface
# added), bits 6-7 the SNI.
SPLIT_WHOLE, SPLIT_FIXED, SPLIT_VARIED, SPLIT_SMALL = 0, 1, 2, 3
SLOW = 1 << 2
END_CLOSE, END_EOF, END_DRAIN, END_ERROR = 0, 1, 2, 3
ANS = {"len": 0, "chunked": 1, "204": 2, "interim": 3, "ws": 4, "big": 5, "bad": 6, "close": 7}
SNI_NONE, SNI_LIVE, SNI_DEAD, SNI_TCP = 0, 1, 2, 3


def ctl(split=SPLIT_WHOLE, slow=False, end=END_CLOSE, answer="len", raw=False, sni=SNI_NONE,
        size=0):
    b0 = split | (SLOW if slow else 0) | (end << 3) | (ANS[answer] << 5)
    b1 = (1 if raw else 0) | ((size & 0x1F) << 1) | (sni << 6)
    return bytes([b0, b1])


def client():
    c = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    c.initiate_connection()
    return c


def req(method, host, path="/", extra=()):
    return [(":method", method), (":scheme", "https"), (":authority", host),
            (":path", path)] + list(extra)


def out(c, keep_preface=False):
    data = c.data_to_send()
    return data if keep_preface else data[len(PREFACE):] if data.startswith(PREFACE) else data


def seeds():
    s = {}

    c = client()
    c.send_headers(1, req("GET", "a.fuzz.example", "/index.html",
                          [("user-agent", "seed"), ("cookie", "a=1"), ("cookie", "b=2")]),
                   end_stream=True)
    s["get-live"] = ctl(sni=SNI_LIVE) + out(c)

    c = client()
    c.send_headers(1, req("GET", "a.fuzz.example", "/raw"), end_stream=True)
    s["get-raw-preface"] = ctl(raw=True, split=SPLIT_SMALL, size=3) + out(c, keep_preface=True)

    c = client()
    c.send_headers(1, req("POST", "a.fuzz.example", "/upload",
                          [("content-type", "text/plain"), ("content-length", "11")]))
    c.send_data(1, b"hello")
    c.send_data(1, b" world", end_stream=True)
    s["post-length"] = ctl(split=SPLIT_FIXED, size=7, answer="chunked") + out(c)

    c = client()
    c.send_headers(1, req("POST", "a.fuzz.example", "/chunked"))
    c.send_data(1, b"x" * 300)
    c.send_headers(1, [("x-checksum", "abc")], end_stream=True)
    s["post-trailers"] = ctl(split=SPLIT_VARIED, answer="interim") + out(c)

    c = client()
    for i in range(4):
        c.send_headers(1 + 2 * i, req("GET", "a.fuzz.example", "/s%d" % i), end_stream=True)
    c.reset_stream(3)
    c.reset_stream(7)
    s["streams-reset"] = ctl(answer="big", slow=True) + out(c)

    c = client()
    c.send_headers(1, req("GET", "b.fuzz.example", "/dead"), end_stream=True)
    c.send_headers(3, req("HEAD", "nowhere.example", "/404"), end_stream=True)
    c.send_headers(5, req("GET", "c.fuzz.example", "/421"), end_stream=True)
    s["dead-404-421"] = ctl(sni=SNI_DEAD, end=END_EOF) + out(c)

    c = client()
    c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000,
                       h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384})
    c.send_headers(1, req("GET", "a.fuzz.example", "/big"), end_stream=True)
    c.ping(b"12345678")
    c.increment_flow_control_window(5000, stream_id=1)
    c.increment_flow_control_window(100000)
    c.prioritize(1, weight=32)
    s["window-ping"] = ctl(answer="big", slow=True, end=END_DRAIN, sni=SNI_LIVE) + out(c)

    # RFC 8441 extended CONNECT: the fuzzer's SETTINGS allow it.
    c = client()
    c.local_settings.enable_connect_protocol = 1
    c.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                       (":authority", "a.fuzz.example"), (":path", "/chat"),
                       ("sec-websocket-version", "13")])
    c.send_data(1, b"\x81\x05hello")
    c.send_data(1, b"", end_stream=True)
    s["websocket"] = ctl(answer="ws", split=SPLIT_FIXED, size=20) + out(c)

    c = client()
    c.send_headers(1, req("GET", "a.fuzz.example", "/bad"), end_stream=True)
    c.send_headers(3, req("GET", "a.fuzz.example", "/bad2"), end_stream=True)
    s["bad-backend"] = ctl(answer="bad", end=END_ERROR) + out(c)

    c = client()
    c.send_headers(1, req("GET", "a.fuzz.example", "/close"), end_stream=True)
    c.close_connection()
    s["close-goaway"] = ctl(answer="close") + out(c)

    c = client()
    c.send_headers(1, req("GET", "a.fuzz.example", "/" + "a" * 3000,
                          [("x-big", "v" * 3000), ("x-big2", "w" * 3000)]), end_stream=True)
    s["header-431"] = ctl(answer="204") + out(c)

    c = client()
    for i in range(60):
        c.ping(bytes([i]) * 8)
    s["ping-flood"] = ctl(split=SPLIT_FIXED, size=31) + out(c)
    # Budgets (h2.c): rapid reset, frames that carry nothing, HPACK abuse.
    c = client()
    for i in range(40):
        c.send_headers(1 + 2 * i, req("GET", "a.fuzz.example", "/r"), end_stream=True)
        c.reset_stream(1 + 2 * i)
    s["rapid-reset"] = ctl(answer="len") + out(c)

    c = client()
    data = out(c)
    empty_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    s["settings-flood"] = ctl(split=SPLIT_FIXED, size=30) + data + empty_settings * 1100

    c = client()
    big = [("x-fill", "f" * 3900)]
    c.send_headers(1, req("GET", "a.fuzz.example", "/bomb", big * 10), end_stream=True)
    s["hpack-bomb"] = ctl() + out(c)

    # Large frames out: the client allows 1 MiB frames and windows.
    c = client()
    c.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 1 << 20,
                       h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
    c.increment_flow_control_window((1 << 31) - 1 - 65535)
    c.send_headers(1, req("GET", "a.fuzz.example", "/big"), end_stream=True)
    c.send_headers(3, req("GET", "a.fuzz.example", "/next"), end_stream=True)
    s["big-frames"] = ctl(answer="big", sni=SNI_LIVE) + out(c)

    # Timers: size 31 lets them fire (idle GOAWAY, exchange deadlines).
    c = client()
    c.send_headers(1, req("POST", "a.fuzz.example", "/slow", [("content-length", "100")]))
    c.send_data(1, b"part")
    s["timers"] = ctl(split=SPLIT_FIXED, size=31) + out(c)
    c = client()
    s["idle"] = ctl(split=SPLIT_FIXED, size=31) + out(c)
    return s


def main():
    for name, data in sorted(seeds().items()):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
