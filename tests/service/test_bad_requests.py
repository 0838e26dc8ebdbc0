"""Malformed and hostile requests to watch --listen over a raw socket: each
gets a 4xx (or the connection closed), never a crash; slow clients and a
crowd of idle connections do not stall the runs, and the server answers
well-formed requests all along.

usage: test_bad_requests.py DAGGERPOOL"""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svc  # noqa: E402

DP = sys.argv[1]


def raw(w, data, timeout=10, shut=True):
    """Sends data, returns the status code of the answer (None: closed
    without one)."""
    s = socket.create_connection((w.host, w.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed before the whole request was sent
        buf = b""
        try:
            while len(buf) < 64:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        m = re.match(rb"HTTP/1\.[01] (\d{3})", buf)
        return int(m.group(1)) if m else None
    finally:
        s.close()


BAD = [
    ("garbage", b"\x00\x01\x02\xff\xfe garbage\r\n\r\n"),
    ("no version", b"GET /metrics\r\n\r\n"),
    ("HTTP/1.1 without Host", b"GET /metrics HTTP/1.1\r\n\r\n"),
    ("space in the target", b"GET /me trics HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad header line", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("header name with space", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
    ("huge header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n"),
    ("huge target", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("many headers", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(5000)) + b"\r\n"),
    ("bad content-length", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
    ("huge content-length", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    ("GET with a body", b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
    ("bad chunked", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("POST with a body", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
    ("unknown method", b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("absolute target elsewhere", b"GET http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("NUL in header", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n"),
    ("bare LF lines", b"GET / HTTP/1.1\nHost: x\n\n"),
    ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("bad page", b"GET /?page=-1&page=zz%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("half a request", b"GET / HT"),
    ("only CRLFs", b"\r\n\r\n\r\n\r\n"),
]

# Requests that are odd but well-formed: answered, with these codes.
# A NUL in a header value: libmicrohttpd 0.9.75 (Debian 12) cuts the value
# there and serves the request; a version that passes the whole value on is
# refused by the server's own check (400).
ODD_OK = {"bare LF lines": (200,), "bad page": (200,), "absolute target elsewhere": (404, 400),
          "NUL in header": (200, 400)}


def main():
    d = svc.tmpdir()
    cfg = svc.write(os.path.join(d, "seed.cfg"), svc.SEED)
    w = svc.Watch(DP, cfg, "--interval", "100ms")
    try:
        w.wait_for("a run", lambda: w.runs_ended() >= 1)
        for name, data in BAD:
            code = raw(w, data)
            ok = ODD_OK.get(name)
            if ok:
                assert code in ok, "%s: %r, expected %s" % (name, code, ok)
            else:
                assert code is None or 400 <= code < 500 or (name == "HTTP/9.9" and code == 505), \
                    "%s: answered %r, expected a 4xx or a closed connection" % (name, code)
            assert w.proc.poll() is None, "watch died on %s:\n%s" % (name, w.log()[-4000:])
            assert w.get("/healthz")[0] == 200, name
        # Slow and idle clients: 600 connections that send half a request
        # and wait, and a slowloris that dribbles bytes; meanwhile runs go
        # on and the server still answers.
        before = w.runs_ended()
        hogs = []
        for _ in range(600):
            try:
                s = socket.create_connection((w.host, w.port), timeout=5)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                hogs.append(s)
            except OSError:
                break
        stop = threading.Event()

        def slowloris():
            s = socket.create_connection((w.host, w.port), timeout=30)
            try:
                s.sendall(b"GET / HTTP/1.1\r\n")
                while not stop.is_set():
                    s.sendall(b"X-a: b\r\n")
                    time.sleep(0.5)
            except OSError:
                pass
            finally:
                s.close()

        t = threading.Thread(target=slowloris)
        t.start()
        t0 = time.monotonic()
        w.wait_for("runs while clients hog connections", lambda: w.runs_ended() >= before + 5, timeout=60)
        took = time.monotonic() - t0
        assert took < 30, "5 runs of ~0.2 s took %.1f s with hogging clients" % took
        # Past the connection limit the kernel's backlog holds a newcomer
        # until an idle one times out (10 s): it is answered, if late.
        for s in hogs[:200]:
            s.close()
        st, _, _ = w.get("/healthz", timeout=30)
        assert st == 200, st
        stop.set()
        t.join()
        for s in hogs[200:]:
            s.close()
        # The idle ones are dropped after the idle timeout.
        assert w.proc.poll() is None, w.log()[-4000:]
        code = w.stop()
        assert code == 130, (code, w.log()[-4000:])
        assert "Sanitizer" not in w.log() and "runtime error" not in w.log(), w.log()[-4000:]
    finally:
        w.stop()
    print("1 passed, 0 failed")


main()
