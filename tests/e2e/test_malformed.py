"""Malformed requests over raw sockets against a running lotad in front of the real
origin. Every case gets the exact status user/lib/http.c intends (or a closed connection),
the reply is a well-formed HTTP/1.1 response with an S3 XML error body, the refusal is
counted in /metrics, and lotad goes on serving a real signed request afterwards."""

import socket
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from lotad import Lotad

KiB = 1024
OK = b"GET / HTTP/1.1\r\nHost: cwlota.com\r\n\r\n"


# -- a minimal, strict HTTP/1.1 response reader ---------------------------------------

class Reply:
    def __init__(self, status, reason, headers, body, closed):
        self.status, self.reason, self.headers = status, reason, headers
        self.body, self.closed = body, closed

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(vals) <= 1, f"{name} repeated: {vals}"
        return vals[0] if vals else None


def recv_until_close(sock, deadline):
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not b:
            return data, True
        data += b
    return data, False


def parse_replies(data):
    """Every complete response in data, and the bytes left over; asserts each is
    well-formed (status line, field syntax, Content-Length framing)."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head, rest = data[:end].decode("latin-1"), data[end + 4:]
        lines = head.split("\r\n")
        proto, _, tail = lines[0].partition(" ")
        code, _, reason = tail.partition(" ")
        assert proto == "HTTP/1.1" and len(code) == 3 and code.isdigit(), lines[0]
        headers = []
        for ln in lines[1:]:
            name, sep, value = ln.partition(":")
            assert sep and name and name.strip() == name and " " not in name, repr(ln)
            headers.append((name, value.strip()))
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        if te == ["chunked"]:  # the origin's own replies (radosgw) may be chunked
            body, rest = dechunk(rest)
            if body is None:
                break
            out.append((int(code), reason, headers, body))
            data = rest
            continue
        cl = [v for k, v in headers if k.lower() == "content-length"]
        assert len(cl) == 1 and cl[0].isdigit(), f"no single Content-Length: {headers}"
        n = int(cl[0])
        if len(rest) < n:
            break
        out.append((int(code), reason, headers, rest[:n]))
        data = rest[n:]
    return out, data


def dechunk(data):
    """(body, rest) of a complete chunked body at the start of data, or (None, data)."""
    body, i = b"", 0
    while True:
        eol = data.find(b"\r\n", i)
        if eol < 0:
            return None, data
        size = int(data[i:eol].split(b";")[0], 16)
        i = eol + 2
        if size == 0:
            end = data.find(b"\r\n\r\n", i - 2)
            return (body, data[end + 4:]) if end >= 0 else (None, data)
        if len(data) < i + size + 2:
            return None, data
        body += data[i:i + size]
        assert data[i + size:i + size + 2] == b"\r\n"
        i += size + 2


def exchange(port, payload, timeout=5.0, pace=None, shut=False):
    """Sends payload (optionally one piece at a time, `pace` seconds apart) and reads
    until lotad closes or `timeout`. Returns the list of Replies; the last one carries
    whether the connection was closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        pieces = payload if isinstance(payload, list) else [payload]
        for i, p in enumerate(pieces):
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pace and i + 1 < len(pieces):
                time.sleep(pace)
        if shut:
            s.shutdown(socket.SHUT_WR)
        data, closed = recv_until_close(s, deadline)
    finally:
        s.close()
    replies, rest = parse_replies(data)
    assert rest == b"", f"trailing bytes after the responses: {rest[:200]!r}"
    res = [Reply(c, r, h, b, False) for c, r, h, b in replies]
    return res, closed


def assert_xml_error(rep, code=None):
    assert rep.header("Content-Type") == "application/xml", rep.headers
    root = ET.fromstring(rep.body)
    assert root.tag == "Error"
    assert root.find("Code") is not None and root.find("Code").text
    assert root.find("Message") is not None and root.find("RequestId") is not None
    if code:
        assert root.find("Code").text == code
    return root


# -- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon(tmp_path_factory, origin):
    d = Lotad(tmp_path_factory.mktemp("malformed"), origin.url, client_timeout=3)
    d.start()
    yield d
    d.stop()


def serves_good_request(d, origin):
    """A real, signed request through lotad (ListBuckets) still works."""
    s3 = origin.s3(endpoint=d.url)
    assert "Buckets" in s3.list_buckets()
    assert d.alive()


def check_refused(d, origin, payload, status, close=True, **kw):
    before = d.metrics()["bad_requests"]
    replies, closed = exchange(d.port, payload, **kw)
    assert len(replies) == 1, f"want one {status} reply, got {[r.status for r in replies]}"
    rep = replies[0]
    assert rep.status == status, (rep.status, rep.body[:300])
    assert_xml_error(rep)
    if close:
        assert rep.header("Connection") == "close"
        assert closed, "lotad must close the connection after refusing this request"
    assert d.metrics()["bad_requests"] >= before + 1
    serves_good_request(d, origin)
    return rep


def host(extra=b""):
    return b"Host: cwlota.com\r\n" + extra


# (id, raw request, status): each is refused and the connection closed.
CASES = [
    # request line
    ("missing-version", b"GET /\r\n" + host() + b"\r\n", 400),
    ("http09-style", b"GET /\r\n\r\n", 400),
    ("only-method", b"GET\r\n\r\n", 400),
    ("double-space", b"GET  / HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("space-before-version", b"GET /  HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("trailing-space", b"GET / HTTP/1.1 \r\n" + host() + b"\r\n", 400),
    ("leading-space", b" GET / HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("tab-separators", b"GET\t/\tHTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("lowercase-version", b"GET / http/1.1\r\n" + host() + b"\r\n", 400),
    ("version-no-minor", b"GET / HTTP/1\r\n" + host() + b"\r\n", 400),
    ("version-two-digit-minor", b"GET / HTTP/1.10\r\n" + host() + b"\r\n", 400),
    ("version-letters", b"GET / HTTP/x.y\r\n" + host() + b"\r\n", 400),
    ("http2", b"GET / HTTP/2.0\r\n" + host() + b"\r\n", 505),
    ("http3", b"GET / HTTP/3.0\r\n" + host() + b"\r\n", 505),
    ("http0-version", b"GET / HTTP/0.9\r\n" + host() + b"\r\n", 505),
    ("absolute-form", b"GET http://cwlota.com/bkt/k HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("asterisk-form", b"OPTIONS * HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("authority-form", b"CONNECT cwlota.com:443 HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("ctl-in-target", b"GET /bkt/a\x01b HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("nul-in-target", b"GET /bkt/a\x00b HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("del-in-target", b"GET /bkt/a\x7fb HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("raw-utf8-target", "GET /bkt/ключ HTTP/1.1\r\n".encode() + host() + b"\r\n", 400),
    ("nul-in-method", b"G\x00T / HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("non-token-method", b"G(T) / HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("method-with-slash", b"GET/ / HTTP/1.1\r\n" + host() + b"\r\n", 400),
    ("too-many-leading-crlf", b"\r\n" * 5 + OK, 400),
    # line endings
    ("bare-lf-everywhere", b"GET / HTTP/1.1\nHost: cwlota.com\n\n", 400),
    ("bare-lf-request-line", b"GET / HTTP/1.1\n" + host() + b"\r\n", 400),
    ("bare-lf-header", b"GET / HTTP/1.1\r\nHost: cwlota.com\nX-A: b\r\n\r\n", 400),
    ("bare-lf-final", b"GET / HTTP/1.1\r\nHost: cwlota.com\r\n\n", 400),
    ("bare-cr-request-line", b"GET / HTTP/1.1\rX: y\r\n" + host() + b"\r\n", 400),
    ("bare-cr-in-value", b"GET / HTTP/1.1\r\n" + host(b"X-A: a\rb\r\n") + b"\r\n", 400),
    ("cr-cr-lf", b"GET / HTTP/1.1\r\r\n" + host() + b"\r\n", 400),
    # header fields
    ("obs-fold-space", b"GET / HTTP/1.1\r\n" + host(b"X-A: a\r\n b\r\n") + b"\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\n" + host(b"X-A: a\r\n\tb\r\n") + b"\r\n", 400),
    ("fold-before-first-field", b"GET / HTTP/1.1\r\n Host: cwlota.com\r\n\r\n", 400),
    ("no-colon", b"GET / HTTP/1.1\r\n" + host(b"X-No-Colon\r\n") + b"\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : cwlota.com\r\n\r\n", 400),
    ("tab-before-colon", b"GET / HTTP/1.1\r\n" + host(b"X-A\t: b\r\n") + b"\r\n", 400),
    ("empty-name", b"GET / HTTP/1.1\r\n" + host(b": b\r\n") + b"\r\n", 400),
    ("non-token-name", b"GET / HTTP/1.1\r\n" + host(b"X[A]: b\r\n") + b"\r\n", 400),
    ("ctl-in-value", b"GET / HTTP/1.1\r\n" + host(b"X-A: a\x01b\r\n") + b"\r\n", 400),
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + host(b"X-A: a\x00b\r\n") + b"\r\n", 400),
    ("nul-in-name", b"GET / HTTP/1.1\r\n" + host(b"X-\x00A: b\r\n") + b"\r\n", 400),
    # sizes
    ("huge-header-value", b"GET / HTTP/1.1\r\n" + host(b"X-Big: " + b"v" * (70 * KiB) + b"\r\n")
     + b"\r\n", 431),
    ("huge-head", b"GET / HTTP/1.1\r\n" + host(b"".join(
        b"X-H%03d: %s\r\n" % (i, b"v" * 1000) for i in range(70))) + b"\r\n", 431),
    ("too-many-headers", b"GET / HTTP/1.1\r\n" + host(b"".join(
        b"X-H%03d: v\r\n" % i for i in range(512))) + b"\r\n", 431),
    ("request-line-over-16k", b"GET /" + b"a" * (16 * KiB + 10) + b" HTTP/1.1\r\n" + host()
     + b"\r\n", 414),
    ("request-line-over-16k-no-lf", b"GET /" + b"a" * (17 * KiB), 414),
    # Host
    ("missing-host-http11", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("duplicate-host", b"GET / HTTP/1.1\r\n" + host(b"Host: cwlota.com\r\n") + b"\r\n", 400),
    ("duplicate-differing-host", b"GET / HTTP/1.1\r\n" + host(b"Host: evil.example\r\n")
     + b"\r\n", 400),
    ("duplicate-host-http10", b"GET / HTTP/1.0\r\n" + host(b"Host: cwlota.com\r\n") + b"\r\n",
     400),
    # framing
    ("cl-and-te", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + b"\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    ("te-and-cl", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n") + b"\r\n0\r\n\r\n", 400),
    ("duplicate-differing-cl", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Content-Length: 5\r\nContent-Length: 6\r\n") + b"\r\nhello!", 400),
    ("cl-list-differing", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: 5, 6\r\n")
     + b"\r\nhello!", 400),
    ("cl-trailing-comma", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: 5,\r\n")
     + b"\r\nhello", 400),
    ("cl-negative", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: -1\r\n") + b"\r\n", 400),
    ("cl-plus", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: +5\r\n") + b"\r\nhello", 400),
    ("cl-non-digit", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: abc\r\n") + b"\r\n", 400),
    ("cl-digit-suffix", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: 5a\r\n")
     + b"\r\nhello", 400),
    ("cl-hex", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: 0x5\r\n") + b"\r\nhello", 400),
    ("cl-inner-space", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length: 1 2\r\n")
     + b"\r\nhello", 400),
    ("cl-overflow-20-digits", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Content-Length: 99999999999999999999\r\n") + b"\r\n", 400),
    ("cl-overflow-2^64", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Content-Length: 18446744073709551616\r\n") + b"\r\n", 400),
    ("cl-empty", b"PUT /b/k HTTP/1.1\r\n" + host(b"Content-Length:\r\n") + b"\r\n", 400),
    ("cl-empty-after-valid", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Content-Length: 5\r\nContent-Length: \r\n") + b"\r\nhello", 400),
    ("te-gzip", b"PUT /b/k HTTP/1.1\r\n" + host(b"Transfer-Encoding: gzip\r\n") + b"\r\n", 501),
    ("te-identity", b"PUT /b/k HTTP/1.1\r\n" + host(b"Transfer-Encoding: identity\r\n")
     + b"\r\n", 501),
    ("te-chunked-not-last", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked, gzip\r\n") + b"\r\n", 501),
    ("te-chunked-then-gzip-field", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n") + b"\r\n", 501),
    ("te-chunked-twice", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked, chunked\r\n") + b"\r\n0\r\n\r\n", 400),
    ("te-chunked-two-fields", b"PUT /b/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + b"\r\n0\r\n\r\n", 400),
    ("te-on-http10", b"PUT /b/k HTTP/1.0\r\n" + host(b"Transfer-Encoding: chunked\r\n")
     + b"\r\n0\r\n\r\n", 400),
]


@pytest.mark.parametrize("payload,status", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused(daemon, origin, payload, status):
    check_refused(daemon, origin, payload, status)


def chunked_put(body):
    return b"PUT /no-such-bucket-lota/k HTTP/1.1\r\n" + host(
        b"Transfer-Encoding: chunked\r\n") + b"\r\n" + body


# Bad chunked bodies: the head is valid and already on its way to the origin; lotad
# finds the framing error in the body and answers 400 before the origin's answer.
CHUNK_CASES = [
    ("size-non-hex", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("size-empty", b"\r\nhello\r\n0\r\n\r\n"),
    ("size-negative", b"-5\r\nhello\r\n0\r\n\r\n"),
    ("size-0x-prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("size-overflow", b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"),
    ("size-two-numbers", b"5 6\r\nhello\r\n0\r\n\r\n"),
    ("size-bare-lf", b"5\nhello\r\n0\r\n\r\n"),
    ("size-bare-cr", b"5\rhello\r\n0\r\n\r\n"),
    ("missing-crlf-after-data", b"5\r\nhelloX\r\n0\r\n\r\n"),
    ("lf-only-after-data", b"5\r\nhello\n0\r\n\r\n"),
    ("data-longer-than-size", b"3\r\nhello\r\n0\r\n\r\n"),
    ("ext-with-ctl", b"5;a=\x01\r\nhello\r\n0\r\n\r\n"),
    ("ext-line-too-long", b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("trailer-no-colon", b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n"),
    ("trailer-obs-fold", b"5\r\nhello\r\n0\r\nX-A: b\r\n c\r\n\r\n"),
    ("trailer-bare-lf", b"5\r\nhello\r\n0\r\nX-A: b\n\r\n"),
    ("trailer-space-before-colon", b"5\r\nhello\r\n0\r\nX-A : b\r\n\r\n"),
    ("trailer-too-big", b"5\r\nhello\r\n0\r\n" + b"".join(
        b"X-T%03d: %s\r\n" % (i, b"v" * 1000) for i in range(20)) + b"\r\n"),
]


@pytest.mark.parametrize("body", [c[1] for c in CHUNK_CASES], ids=[c[0] for c in CHUNK_CASES])
def test_bad_chunked_body(daemon, origin, body):
    """lotad streams a body as it scans it, so the origin may answer the head (here its
    404: no such bucket) before lotad reaches the bad framing; then lotad cuts the
    connection. Either way the bad body never passes as a complete request."""
    before = daemon.metrics()["bad_requests"]
    replies, closed = exchange(daemon.port, chunked_put(body))
    assert len(replies) == 1, [r.status for r in replies]
    rep = replies[0]
    if rep.header("Server") == "lotad":
        assert rep.status == 400, (rep.status, rep.body[:300])
        assert_xml_error(rep)
        assert daemon.metrics()["bad_requests"] >= before + 1
    else:
        # The origin answered first; lotad then closed without reading the rest of the
        # body (so it may never have seen the bad framing, nor counted it).
        assert rep.status in (403, 404, 411), (rep.status, rep.body[:300])
    assert closed, "lotad must close the connection of a badly framed body"
    serves_good_request(daemon, origin)


def test_good_chunked_body_reaches_origin(daemon, origin):
    """The control case: well-formed chunks (extensions, trailer) pass the scanner and
    the origin answers (its 404 for the missing bucket, not a 400 from lotad)."""
    body = b"5;chunk-signature=ab\r\nhello\r\n0\r\nX-Amz-Trailer-X: y\r\n\r\n"
    replies, _ = exchange(daemon.port, chunked_put(body))
    assert len(replies) == 1 and replies[0].status in (403, 404), replies[0].status
    assert replies[0].header("Server") != "lotad"


def test_leading_empty_lines_are_ignored(daemon, origin):
    replies, _ = exchange(daemon.port, b"\r\n\r\n" + OK, timeout=2)
    assert len(replies) == 1 and replies[0].header("Server") != "lotad"


def test_http10_without_host_is_served(daemon, origin):
    replies, closed = exchange(daemon.port, b"GET / HTTP/1.0\r\n\r\n")
    assert len(replies) == 1 and replies[0].header("Server") != "lotad"
    assert closed  # HTTP/1.0 without keep-alive


def test_body_shorter_than_content_length_then_close(daemon, origin):
    """The client promises 100 bytes, sends 10 and half-closes: nothing may come back
    that looks like the origin accepted a complete upload; lotad stays up."""
    req = b"PUT /no-such-bucket-lota/k HTTP/1.1\r\n" + host(b"Content-Length: 100\r\n") + b"\r\n"
    replies, closed = exchange(daemon.port, req + b"x" * 10, shut=True, timeout=8)
    assert closed
    assert all(r.status >= 400 for r in replies), [r.status for r in replies]
    serves_good_request(daemon, origin)


def test_body_shorter_than_content_length_times_out(daemon, origin):
    """Same, but the client stays connected and silent: client-timeout (3 s) ends it
    with a 408 (or a close) and the origin connection is dropped."""
    req = b"PUT /no-such-bucket-lota/k HTTP/1.1\r\n" + host(b"Content-Length: 100\r\n") + b"\r\n"
    t0 = time.monotonic()
    replies, closed = exchange(daemon.port, req + b"x" * 10, timeout=10)
    assert closed and time.monotonic() - t0 < 8
    assert all(r.status in (408, 403, 404) for r in replies), [r.status for r in replies]
    serves_good_request(daemon, origin)


def test_bad_request_then_pipelined_good_ones_not_processed(daemon, origin):
    bad = b"GET / HTTP/1.1\r\nHost : cwlota.com\r\n\r\n"
    replies, closed = exchange(daemon.port, bad + OK + OK)
    assert [r.status for r in replies] == [400] and closed
    assert_xml_error(replies[0])


def test_good_then_bad_then_good_pipelined(daemon, origin):
    """A good request is answered, the bad one after it refused, the third ignored."""
    bad = b"GET / HTTP/1.1\r\nHost: cwlota.com\r\nX\r\n\r\n"
    replies, closed = exchange(daemon.port, OK + bad + OK)
    assert len(replies) == 2 and closed
    assert replies[0].header("Server") != "lotad"
    assert replies[1].status == 400
    assert_xml_error(replies[1])


def test_pipelined_good_requests_all_answered(daemon, origin):
    replies, _ = exchange(daemon.port, OK * 3, timeout=2)
    assert len(replies) == 3


def test_partial_head_then_close_is_harmless(daemon, origin):
    before = daemon.metrics()
    replies, closed = exchange(daemon.port, b"GET / HTTP/1.1\r\nHost: cwl", shut=True)
    assert replies == [] and closed
    serves_good_request(daemon, origin)
    assert daemon.metrics()["connections_open"] <= before["connections_open"]


def test_slow_headers_cut_by_client_timeout(make_lotad, origin):
    """A client that sends its head one byte per second (slowloris) must be cut off
    after about client-timeout (2 s) of head time, with a 408 or a close, not kept alive
    for as long as it keeps trickling."""
    d = make_lotad(client_timeout=2)
    head = b"GET / HTTP/1.1\r\nHost: cwlota.com\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", d.port))
    s.settimeout(0.2)
    t0 = time.monotonic()
    cut = None
    data = b""
    for i in range(len(head)):
        try:
            s.sendall(head[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - t0
            break
        try:
            b = s.recv(65536)
            data += b
            if not b:
                cut = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            cut = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 8:
            break
        time.sleep(0.8)
    s.close()
    assert cut is not None, (
        f"lotad kept a slowloris connection open for {time.monotonic() - t0:.1f}s "
        f"(client-timeout=2): the read timeout is re-armed by every byte, so a head "
        f"trickled slowly is never cut (user/lotad/exchange set_client_timeout)")
    assert cut < 6
    if data:
        replies, _ = parse_replies(data)
        assert [r[0] for r in replies] == [408]
    assert d.alive()
    serves_good_request(d, origin)


def test_silent_connections_are_closed_and_do_not_block(make_lotad, origin):
    """Connections that send nothing are closed after client-timeout without a reply,
    and real requests are served meanwhile."""
    d = make_lotad(client_timeout=2)
    socks = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(50)]
    serves_good_request(d, origin)
    t0 = time.monotonic()
    results = []

    def wait(s):
        data, closed = recv_until_close(s, time.monotonic() + 8)
        results.append((data, closed, time.monotonic() - t0))

    threads = [threading.Thread(target=wait, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for s in socks:
        s.close()
    assert len(results) == 50
    for data, closed, when in results:
        assert closed and data == b"" and when < 6, (data[:100], closed, when)
    assert d.metrics()["client_timeouts"] >= 50
    serves_good_request(d, origin)
