"""Origin failures seen through lotad: unreachable, silent, cut mid-body, malformed.
The misbehaving origins are tiny socket servers in this file, used only to inject
faults at the byte level; everything about S3 itself is checked against the real
radosgw. Before the response started the client gets an S3 XML error (502/504); after
it started the connection is cut so that a short body never looks complete."""

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest

from origin import free_port

MiB = 1024 * 1024


class FaultOrigin:
    """Accepts connections on loopback; for each, reads one request head and then does
    what `self.script` (bytes to send, then an action) says."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.script = (b"", "close")
        self.conns = []
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, self.script), daemon=True).start()

    def _serve(self, c, script):
        data, action = script
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                b = c.recv(65536)
                if not b:
                    return
                head += b
            if data:
                c.sendall(data)
            if action == "hang":
                while not self.stopping and c.recv(65536):
                    pass
                return
            if action == "keep":  # a well-behaved keep-alive server: answer every request
                while True:
                    b = c.recv(65536)
                    if not b:
                        return
                    c.sendall(data)
        except OSError:
            pass
        finally:
            if action != "hang":
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


@pytest.fixture
def fault():
    f = FaultOrigin()
    yield f
    f.stop()


OK_BODY = b"<ok/>"
OK_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s"
            % (len(OK_BODY), OK_BODY))


def raw_get(port, path="/bkt/key", timeout=10):
    """(status, headers dict, body, complete?) of one GET with Connection: close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: cwlota.com\r\nConnection: close\r\n\r\n" % path.encode())
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/1.1 ") else None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def assert_s3_error(status, headers, body, want_status, want_code):
    assert status == want_status, (status, body[:300])
    assert headers.get("content-type") == "application/xml"
    assert int(headers["content-length"]) == len(body)
    root = ET.fromstring(body)
    assert root.tag == "Error" and root.find("Code").text == want_code, body
    return root.find("Message").text or ""


def still_serves(d, fault):
    """lotad is alive and relays a well-formed exchange afterwards."""
    assert d.alive()
    assert d.get("/healthz").strip() == "ok"
    fault.script = (OK_REPLY, "close")
    status, _, body = raw_get(d.port)
    assert status == 200 and body == OK_BODY


def curl_get(url, out, timeout=30):
    return subprocess.run(["curl", "-sS", "-o", str(out), "--max-time", "20", url],
                          capture_output=True, timeout=timeout)


# -- before the response started: XML errors --------------------------------------------

def test_origin_unreachable_502(make_lotad, fault):
    closed = free_port()
    d = make_lotad(origin_url=f"http://127.0.0.1:{closed}")
    status, headers, body = raw_get(d.port)
    msg = assert_s3_error(status, headers, body, 502, "BadGateway")
    assert f"127.0.0.1:{closed}" in msg and "refused" in msg.lower(), msg
    assert d.metrics()["origin_errors"] >= 1
    assert d.alive() and d.get("/healthz").strip() == "ok"
    status, headers, body = raw_get(d.port)
    assert_s3_error(status, headers, body, 502, "BadGateway")


def test_origin_silent_504(make_lotad, fault):
    fault.script = (b"", "hang")
    d = make_lotad(origin_url=fault.url, origin_timeout=2)
    t0 = time.monotonic()
    status, headers, body = raw_get(d.port)
    took = time.monotonic() - t0
    msg = assert_s3_error(status, headers, body, 504, "GatewayTimeout")
    assert "timed out" in msg
    assert 1.5 < took < 6, took
    assert d.metrics()["origin_timeouts"] >= 1
    still_serves(d, fault)


def test_origin_closes_before_responding_502(make_lotad, fault):
    fault.script = (b"", "close")
    d = make_lotad(origin_url=fault.url)
    status, headers, body = raw_get(d.port)
    msg = assert_s3_error(status, headers, body, 502, "BadGateway")
    assert "closed" in msg, msg
    still_serves(d, fault)


BAD_HEADS = {
    "garbage": b"garbage\r\n\r\n",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    "status-4-digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "status-letters": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
    "http2": b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "differing-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    "negative-cl": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok",
    "no-colon": b"HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 2\r\n\r\nok",
    "nul": b"HTTP/1.1 200 OK\r\nX-A: \x00\r\nContent-Length: 2\r\n\r\nok",
    "huge-head": b"HTTP/1.1 200 OK\r\n" + b"X-A: " + b"v" * (70 * 1024) + b"\r\n\r\n",
    "head-then-close": b"HTTP/1.1 200 OK\r\nContent-Le",
}


@pytest.mark.parametrize("reply", BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_origin_malformed_head_502(make_lotad, fault, reply):
    fault.script = (reply, "close")
    d = make_lotad(origin_url=fault.url)
    status, headers, body = raw_get(d.port)
    assert_s3_error(status, headers, body, 502, "BadGateway")
    still_serves(d, fault)


# -- after the response started: the connection is cut ------------------------------------

SHORT_BODIES = {
    "content-length-half": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000,
    "content-length-head-only": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    "chunked-mid-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"186a0\r\n" + b"x" * 50000,
    "chunked-between-chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + b"c350\r\n" + b"x" * 50000 + b"\r\n",
    "chunked-bad-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"10\r\n" + b"x" * 16 + b"\r\nzz\r\n",
}


@pytest.mark.parametrize("reply", SHORT_BODIES.values(), ids=SHORT_BODIES.keys())
def test_origin_cut_mid_body_curl_sees_error(make_lotad, fault, reply, tmp_path):
    fault.script = (reply, "close")
    d = make_lotad(origin_url=fault.url)
    p = curl_get(d.url + "/bkt/key", tmp_path / "out")
    # 18: closed before Content-Length / the last chunk; 56: reset while receiving;
    # 52: nothing at all (lotad cut the connection before its queued head was sent).
    assert p.returncode in (18, 52, 56), (p.returncode, p.stderr)
    out = tmp_path / "out"
    assert not out.exists() or os.path.getsize(out) < 100000
    assert d.metrics()["origin_aborts"] + d.metrics()["origin_errors"] >= 1
    still_serves(d, fault)


@pytest.mark.parametrize("reply", [SHORT_BODIES["content-length-half"],
                                   SHORT_BODIES["chunked-mid-chunk"]],
                         ids=["content-length", "chunked"])
def test_origin_cut_mid_body_boto3_raises(make_lotad, fault, origin, reply):
    fault.script = (reply, "close")
    d = make_lotad(origin_url=fault.url)
    s3 = origin.s3(endpoint=d.url)
    with pytest.raises(Exception) as e:
        s3.get_object(Bucket="bkt", Key="key")["Body"].read()
    assert "ClientError" not in type(e.value).__name__, e.value
    still_serves(d, fault)


def test_origin_stalls_mid_body_connection_cut(make_lotad, fault, tmp_path):
    fault.script = (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000, "hang")
    d = make_lotad(origin_url=fault.url, origin_timeout=2)
    t0 = time.monotonic()
    p = curl_get(d.url + "/bkt/key", tmp_path / "out")
    assert p.returncode in (18, 56), (p.returncode, p.stderr)
    assert time.monotonic() - t0 < 8
    still_serves(d, fault)


def test_many_faults_in_a_row_then_real_origin(make_lotad, fault, origin):
    """Alternating faults on one lotad leave nothing behind: no leaked connections,
    and the same binary relays real S3 afterwards."""
    d = make_lotad(origin_url=fault.url, origin_timeout=2)
    for reply in list(BAD_HEADS.values())[:6] + list(SHORT_BODIES.values()):
        fault.script = (reply, "close")
        raw_get(d.port)
    still_serves(d, fault)
    time.sleep(0.3)
    assert d.metrics()["connections_open"] == 0
    real = make_lotad()
    bucket = "faults-" + uuid.uuid4().hex[:10]
    s3 = origin.s3(endpoint=real.url)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"after the faults")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"after the faults"


# -- backpressure ----------------------------------------------------------------------

def test_slow_reader_of_256mib_keeps_rss_flat(make_lotad, origin):
    """A client reading a 256 MiB object at about 4 MiB/s: lotad must stop reading from
    the origin rather than queue the object in memory (RSS grows by a few MiB at most)."""
    bucket = "bp-" + uuid.uuid4().hex[:10]
    s3 = origin.s3()
    s3.create_bucket(Bucket=bucket)
    size = 256 * MiB
    s3.put_object(Bucket=bucket, Key="big", Body=b"\xa5" * size)
    d = make_lotad()
    time.sleep(0.2)
    rss0 = d.status("VmRSS")
    url, headers = origin.signed_headers("GET", bucket, "big", endpoint=d.url)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.connect(("127.0.0.1", d.port))
    path = url.split(str(d.port), 1)[1]
    if not any(k.lower() == "host" for k in headers):
        headers["Host"] = f"127.0.0.1:{d.port}"
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(req.encode() + b"\r\n")
    got, peak, t0 = 0, rss0, time.monotonic()
    rate = 4 * MiB
    while time.monotonic() - t0 < 10:
        b = s.recv(64 * 1024)
        assert b, "lotad closed the connection of a slow reader"
        if not got:
            assert b.startswith(b"HTTP/1.1 200 "), b[:300]
        got += len(b)
        ahead = got / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
        peak = max(peak, d.status("VmRSS"))
    s.close()
    assert got > 20 * MiB, got
    growth = (peak - rss0) / 1024
    print(f"slow reader: {got / MiB:.0f} MiB in 10 s, lotad RSS {rss0 / 1024:.1f} MiB -> "
          f"peak {peak / 1024:.1f} MiB")
    # Under AddressSanitizer freed buffers sit in its quarantine before reuse.
    assert growth < (48 if d.sanitized else 8), f"lotad RSS grew {growth:.1f} MiB for one slow reader"
    assert d.alive()
    s3.delete_object(Bucket=bucket, Key="big")


def test_sigterm_drains_requests_in_progress(make_lotad, origin):
    """SIGTERM: /healthz says 503, no new connection is accepted, and a download in
    progress still completes byte for byte before lotad exits."""
    bucket = "drain-" + str(os.getpid())
    origin.create_bucket(bucket)
    body = os.urandom(24 * MiB)
    origin.s3().put_object(Bucket=bucket, Key="big", Body=body)
    d = make_lotad(drain_timeout=30)
    url, headers = origin.signed_headers("GET", bucket, "big", endpoint=d.url)
    s = socket.create_connection(("127.0.0.1", d.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    path = url.split(str(d.port), 1)[1]
    headers.setdefault("Host", f"127.0.0.1:{d.port}")  # what the signature covers
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall((req + "\r\n").encode())
    got = s.recv(1 << 20)  # the head and the first bytes: the response is under way
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(urllib.error.HTTPError) as e:
        d.get("/healthz")
    assert e.value.code == 503
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
    assert d.alive()
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert rest == body
    d.proc.wait(10)
    assert "draining" in d.log_text()


def test_client_that_stops_reading_is_cut_not_answered(make_lotad, origin):
    """A client stops reading a cached object's body (served with sendfile): after
    client-timeout lotad closes the connection. Nothing is appended to the body (no 408
    in the middle of it) and the connection is not kept forever."""
    bucket = "stall-" + str(os.getpid())
    origin.create_bucket(bucket)
    body = os.urandom(64 * MiB)
    origin.s3().put_object(Bucket=bucket, Key="big", Body=body)
    d = make_lotad(client_timeout=2)
    s3 = origin.s3(endpoint=d.url)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == body
    time.sleep(1)  # the fill's commit
    url, headers = origin.signed_headers("GET", bucket, "big", endpoint=d.url)
    headers.setdefault("Host", f"127.0.0.1:{d.port}")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.connect(("127.0.0.1", d.port))
    path = url.split(str(d.port), 1)[1]
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall((req + "\r\n").encode())
    got = s.recv(64 * 1024)
    assert got.startswith(b"HTTP/1.1 200")
    time.sleep(5)  # stop reading for longer than client-timeout
    s.settimeout(10)
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"x-lota-cache: hit" in head
    assert len(rest) < len(body), "the stalled transfer was expected to be cut"
    assert rest == body[:len(rest)], "bytes after the cut are not the object's"
    assert d.metrics()["connections_open"] == 0
    assert d.metrics()["client_timeouts"] >= 1


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_does_not_spin(make_lotad):
    """lotad out of file descriptors (its limit lowered under it, max-connections above
    it): accept() fails, and the pending connection stays in the backlog. The listeners
    rest and retry instead of failing in a loop (before: a core at 98% and millions of
    log lines a minute while other clients waited), the failure is logged a few times and
    counted, and once connections close new clients are served again."""
    d = make_lotad(workers="1", max_connections="10000", client_timeout="30")
    subprocess.run(["prlimit", f"--pid={d.proc.pid}", "--nofile=64:64"], check=True)
    idle = []
    try:
        for _ in range(80):  # past the limit: the last ones wait in the backlog
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", d.port))
            idle.append(s)
        time.sleep(0.5)
        cpu0, t0 = _cpu_s(d.proc.pid), time.monotonic()
        time.sleep(2)
        busy = (_cpu_s(d.proc.pid) - cpu0) / (time.monotonic() - t0)
        assert busy < 0.3, f"lotad used {busy:.0%} of a core while out of descriptors"
        lines = [l for l in d.log_text().splitlines() if "accept: Too many open files" in l]
        assert 1 <= len(lines) <= 3, lines[:5]
    finally:
        for s in idle:
            s.close()
    end = time.monotonic() + 15  # the closed ones go, the waiting ones get in
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{d.port}/", timeout=2) as r:
                r.read()
            break
        except urllib.error.HTTPError:
            break  # an answer (the origin's 403 to an anonymous ListBuckets)
        except OSError:
            time.sleep(0.2)
    else:
        raise AssertionError("no answer after the connections closed")
    assert d.metrics()["accept_errors"] >= 1
