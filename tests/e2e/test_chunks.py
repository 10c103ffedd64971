"""The cache unit is the chunk (issue 12): lotad in front of the real radosgw, real clients
(boto3, aws cli v2, the AWS CRT S3 client), every byte compared with what was uploaded.

What the origin sent is read from its request log (one beast line per request, with the
Range it was asked and the body bytes it sent). Where a test must see lotad's own requests
(their ranges, If-Match, timing) or hit "the middle of a chunk fill", lotad reaches the
origin through a relay (tests/lib/relay.py) that records the exchanges and paces the
origin's answers; the origin itself is always the real one.

lotad's service credentials belong to a user of their own (granted s3:GetObject on the
bucket by policy), so the log tells lotad's fills from the clients' requests. The chunk
size is read from lotad's config (`chunk-size`, default 16M), never assumed."""

import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

import clients
from crt import CrtEndpoint, crt_download, crt_upload
from lotad import BUILD
from origin import Origin
from relay import Relay

HOST = "cwlota.com"
KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
DEFAULT_CHUNK = "16M"
UNITS = {"": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}
OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'
METRICS = ["cache_chunk_hits", "cache_chunk_misses", "cache_chunk_fills",
           "cache_chunk_follows", "cache_chunk_resumes", "cache_fill_retries",
           "bytes_from_origin_relay", "bytes_from_origin_fill", "bytes_from_origin_prestage"]


# -- data ------------------------------------------------------------------------------

_POOL = os.urandom(32 * MiB)


def rand(n):
    """n bytes made of 1 MiB blocks cut at random offsets of a random pool: no two
    places of one object (or of two objects) hold the same bytes, and it is much cheaper
    than os.urandom at hundreds of MiB."""
    parts, left = [], n
    while left:
        k = min(MiB, left)
        off = random.randrange(0, len(_POOL) - k)
        parts.append(_POOL[off:off + k])
        left -= k
    return b"".join(parts)


def assert_bytes(got, want, what):
    """got == want, saying where they differ (never dumping megabytes)."""
    if got == want:
        return
    n = min(len(got), len(want))
    i = next((i for i in range(0, n, 4096) if got[i:i + 4096] != want[i:i + 4096]), n)
    raise AssertionError(f"{what}: {len(got)} bytes, expected {len(want)}; "
                         f"first difference in the 4 KiB at offset {i}")


def size_of(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", str(text).strip().upper())
    assert m, text
    return int(m.group(1)) * UNITS[m.group(2)]


def chunk_size(d):
    """The chunk size lotad d runs with, from its config."""
    return size_of(d.cfg.get("chunk-size", DEFAULT_CHUNK))


def chunks_of(size, cs):
    return max(1, -(-size // cs))


def ep(d):
    return f"http://{HOST}:{d.port}"


_clients = {}
_clients_lock = threading.Lock()


def s3c(origin, endpoint=None):
    """A boto3 client of origin's default user to endpoint (default: the origin itself),
    made once: making one costs ~0.1-0.4 s here, and they are thread-safe."""
    k = (endpoint or origin.url, origin.access_key, origin.secret_key)
    with _clients_lock:
        if k not in _clients:
            # A read that stalls this long is a failure here: say so soon (boto3 waits
            # 120 s by default), and a test that fails stays short.
            _clients[k] = origin.s3(endpoint=endpoint, read_timeout=30,
                                    max_pool_connections=16)
        return _clients[k]


def put(origin, bucket, key, body):
    s3c(origin).put_object(Bucket=bucket, Key=key, Body=body)
    return body


def get(s3, bucket, key, **kw):
    """(status, body, lower-cased headers) of a boto3 get_object."""
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return (r["ResponseMetadata"]["HTTPStatusCode"], r["Body"].read(),
            r["ResponseMetadata"]["HTTPHeaders"])


def wait_until(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


# -- what the origin sent -----------------------------------------------------------------

def gets(origin, bucket, key, since):
    return origin.log_requests(since, "GET", f"/{bucket}/{key}")


def sent(reqs):
    """Body bytes of the 2xx answers among reqs."""
    return sum(r.bytes for r in reqs if 200 <= r.status < 300)


def span(r, size):
    """(first, last) byte of the object that a 2xx GET line carried."""
    lo = 0
    if r.range:
        first = r.range.split("=", 1)[1].split(",")[0]
        a, _, b = first.partition("-")
        lo = size - int(b) if a == "" else int(a)
    return lo, lo + r.bytes - 1


def assert_each_byte_once(reqs, size, slack=1.02):
    """The origin sent at most size * slack bytes of body and no byte of the object twice."""
    spans = sorted(span(r, size) for r in reqs if 200 <= r.status < 300 and r.bytes)
    total = sum(hi - lo + 1 for lo, hi in spans)
    assert total <= size * slack, f"the origin sent {total} bytes for {size}: {spans}"
    for (a, b), (c, d) in zip(spans, spans[1:]):
        assert c > b, f"bytes {c}-{min(b, d)} were sent twice: {a}-{b} and {c}-{d}"


def assert_warm(origin, bucket, key, since):
    """Since the mark, the origin sent no body for key: its GETs were all answered 304,
    and no other request (lotad's own HEADs and fills included) carried a body."""
    reqs = origin.log_requests(since, path=f"/{bucket}/{key}")
    g = [r for r in reqs if r.method == "GET"]
    assert g, "no GET reached the origin: nobody authorized the reads"
    bad = [(r.method, r.status, r.bytes, r.range, r.user) for r in reqs
           if r.bytes or (r.method == "GET" and r.status != 304)]
    assert not bad, f"the origin sent bodies on a warm pass: {bad}"


def chunk_files(d):
    """{name: size} of the committed chunk files in lotad d's store (cache/cache.h:
    objects/XX/<hash>)."""
    out = {}
    top = os.path.join(d.cfg["cache-dir"], "objects")
    for root, _, files in os.walk(top):
        for f in files:
            out[f] = os.path.getsize(os.path.join(root, f))
    return out


def running_fills(d):
    tmp = os.path.join(d.cfg["cache-dir"], "tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def max_overlap(intervals):
    """The largest number of (start, end) intervals open at one instant."""
    ev = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, dlt in ev:
        cur += dlt
        best = max(best, cur)
    return best


# -- a client that reads at its own pace ----------------------------------------------------

class RawGet:
    """A signed GET through lotad on a socket of its own with a small receive buffer, its
    body read at the test's pace (slow, stalled, or as fast as it comes)."""

    def __init__(self, origin, d, bucket, key, headers=None, rcvbuf=64 * KiB, timeout=30):
        url, h = origin.signed_headers("GET", bucket, key, headers=headers, endpoint=ep(d))
        h["Host"] = f"{HOST}:{d.port}"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", d.port))
        req = f"GET {url[len(ep(d)):]} HTTP/1.1\r\n" + \
            "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(req.encode())
        self.timeout = timeout
        self.status = None
        self.headers = {}
        self.length = None
        self.body = bytearray()
        self.eof = False  # the connection ended (closed or reset)
        self.timed_out = False

    def read_head(self):
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = self.sock.recv(65536)
            assert b, f"connection closed before a response head: {buf[:300]!r}"
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.length = int(self.headers.get("content-length", "0"))
        self.body += rest
        return self.status

    @property
    def complete(self):
        return self.length is not None and len(self.body) >= self.length

    def read(self, n=None, rate=None, fast=None):
        """Reads n more body bytes (None: the rest) at rate bytes/s (None: as fast as they
        come; once the Event fast is set, too). Stops early at the end of the connection."""
        if self.status is None:
            self.read_head()
        left = self.length - len(self.body)
        want = left if n is None else min(n, left)
        start, t0 = len(self.body), time.monotonic()
        while len(self.body) - start < want:
            try:
                b = self.sock.recv(min(65536, want - (len(self.body) - start)))
            except socket.timeout:
                self.timed_out = True
                return len(self.body) - start
            except OSError:
                b = b""
            if not b:
                self.eof = True
                break
            self.body += b
            if rate and not (fast and fast.is_set()):
                ahead = (len(self.body) - start) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        return len(self.body) - start

    def close(self):
        self.sock.close()


def lotactl(*args, env=None, timeout=300):
    p = subprocess.run([os.path.join(BUILD, "lotactl"), *args], capture_output=True,
                       text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tag():
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def svc(origin, tag):
    """lotad's service user: (access, secret, uid)."""
    uid = "chunksvc-" + tag
    access, secret = origin.create_user(uid)
    return access, secret, uid


@pytest.fixture(scope="module")
def bucket(origin, svc, tag):
    name = "chunks-" + tag
    origin.create_bucket(name)
    origin.set_bucket_policy(name, Origin.policy_allow(svc[2], name))
    yield name
    s3 = s3c(origin)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def write_creds(path, access, secret):
    path.write_text(f"[default]\naws_access_key_id = {access}\n"
                    f"aws_secret_access_key = {secret}\n")
    return str(path)


@pytest.fixture
def chunk_lotad(make_lotad, tmp_path, svc):
    """make(**config) -> a started lotad with the service user's credentials."""
    creds = write_creds(tmp_path / "service-credentials", svc[0], svc[1])

    def make(origin_url=None, **cfg):
        cfg.setdefault("service_credentials", creds)
        return make_lotad(origin_url=origin_url, **cfg)

    return make


@pytest.fixture
def relay_to(origin):
    """make(rate=None, target=None) -> a started Relay on 127.0.0.1 to the origin."""
    made = []

    def make(rate=None, target=None):
        r = Relay(("127.0.0.1", 0), target or ("127.0.0.1", origin.port), rate=rate).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def fills_of(relay, svc_access, bucket, key, since=0):
    """lotad's own GETs of bucket/key that went through relay (service credentials)."""
    path = f"/{bucket}/{urllib.parse.quote(key)}"
    return [x for x in relay.exchanges(since)
            if x.method == "GET" and x.access_key == svc_access and x.path == path]


# -- ranges: each chunk fetched once --------------------------------------------------------

def make_ranges(rng, size, cs, n):
    """n (Range header, first, last) over an object of size bytes: the first and last
    bytes of the object and of every chunk, a range across each chunk boundary, suffix and
    open-ended ranges, one past the end; then random ones of every length."""
    out = [("bytes=0-0", 0, 0), (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),
           ("bytes=-3", size - 3, size - 1), (f"bytes=-{cs + 1}", size - cs - 1, size - 1),
           (f"bytes={size - 5}-", size - 5, size - 1), (f"bytes=7-{size + 100}", 7, size - 1)]
    for k in range(1, chunks_of(size, cs)):
        b = k * cs
        out += [(f"bytes={b - 1}-{b}", b - 1, b), (f"bytes={b}-{b}", b, b),
                (f"bytes={b - 1}-{b - 1}", b - 1, b - 1)]
    while len(out) < n:
        x = rng.random()
        length = (rng.randint(1, 4 * KiB) if x < 0.4 else rng.randint(4 * KiB, MiB) if x < 0.85
                  else rng.randint(MiB, 20 * MiB))
        lo = rng.randrange(0, size)
        hi = min(size - 1, lo + length - 1)
        out.append((f"bytes={lo}-{hi}", lo, hi))
    rng.shuffle(out)
    return out[:n]


def read_ranges(origin, d, bucket, key, body, ranges, workers=4):
    size = len(body)
    s3 = s3c(origin, ep(d))

    def one(item):
        hdr, lo, hi = item
        status, got, h = get(s3, bucket, key, Range=hdr)
        assert status == 206, (hdr, status)
        assert h["content-range"] == f"bytes {lo}-{hi}/{size}", (hdr, h["content-range"])
        assert_bytes(got, body[lo:hi + 1], hdr)

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, ranges))


def test_random_ranges_cold_then_warm_fetch_each_chunk_once(origin, bucket, chunk_lotad):
    """200 random ranges over a 100 MiB + 3 byte object, 4 readers at once, cold and then
    warm, each compared with the source; over the whole test the origin sent each byte of
    the object at most once (chunks are filled once, ranges are never relayed), and
    nothing at all on the warm pass."""
    size = 100 * MiB + 3
    key = "ranges/r100"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad()
    cs = chunk_size(d)
    ranges = make_ranges(random.Random(12), size, cs, 200)
    mark = origin.log_mark()
    m0 = d.metrics()
    read_ranges(origin, d, bucket, key, body, ranges)
    m1 = d.metrics()

    warm = origin.log_mark()
    read_ranges(origin, d, bucket, key, body, ranges)
    assert_warm(origin, bucket, key, warm)
    m2 = d.metrics()
    assert_each_byte_once(gets(origin, bucket, key, mark), size)
    assert m1["cache_chunk_fills"] - m0["cache_chunk_fills"] <= chunks_of(size, cs)
    assert m2["cache_chunk_hits"] > m1["cache_chunk_hits"]
    assert m2["cache_chunk_fills"] == m1["cache_chunk_fills"]


# -- a small range of a big cold object ------------------------------------------------------

def sparse_object(path, size, lo, hi):
    """A file of size bytes, zero but for random bytes in [lo, hi): the origin stores a
    big object cheaply, and the bytes a test reads are unlike any others."""
    data = rand(hi - lo)
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(lo)
        f.write(data)
    return data


@pytest.mark.parametrize("size,cfg", [(GiB, {}), (64 * MiB, {"chunk_size": "4M"})],
                         ids=["1GiB-default-chunk", "64MiB-4M-chunk"])
def test_4k_range_of_cold_big_object_costs_one_chunk(origin, bucket, chunk_lotad, tmp_path,
                                                    size, cfg):
    """A 4 KiB range of a cold object: the origin sends at most the chunk that holds it
    (plus the client's own 4 KiB), and nothing more afterwards (no background fill of the
    rest); a second 4 KiB of the same chunk costs no body."""
    d = chunk_lotad(**cfg)
    cs = chunk_size(d)
    key = f"big/{size}-{cs}"
    k = (size * 5 // 8) // cs  # a chunk in the middle
    src = tmp_path / "src.bin"
    data = sparse_object(src, size, k * cs, min(size, (k + 1) * cs))
    clients.curl_sigv4(f"{origin.url}/{bucket}/{key}", origin.access_key, origin.secret_key,
                       extra=["-T", str(src), "-o", os.devnull], timeout=300)
    os.unlink(src)
    try:
        s3 = s3c(origin, ep(d))
        off = k * cs + cs // 3 + 12345  # 4 KiB well inside chunk k
        mark = origin.log_mark()
        status, got, h = get(s3, bucket, key, Range=f"bytes={off}-{off + 4095}")
        assert status == 206
        assert_bytes(got, data[off - k * cs:off - k * cs + 4096], "the 4 KiB range")
        # The chunk's fill goes on after its reader has its 4 KiB: the origin logs it when
        # it ends, which must come before the mark of the warm read.
        wait_until(lambda: not running_fills(d), 60, "the chunk's fill ends")
        again = origin.log_mark()
        off2 = k * cs + cs // 2
        status, got, h = get(s3, bucket, key, Range=f"bytes={off2}-{off2 + 4095}")
        assert_bytes(got, data[off2 - k * cs:off2 - k * cs + 4096], "a second 4 KiB range")
        assert_warm(origin, bucket, key, again)

        time.sleep(2)  # a background fill of the rest would be under way by now
        d.stop()  # and it is cut here: its line in the origin's log says what it sent
        reqs = origin.log_requests(mark, path=f"/{bucket}/{key}")
        assert sent(reqs) <= cs + 4096, [(r.method, r.status, r.bytes, r.range) for r in reqs]
    finally:
        s3c(origin).delete_object(Bucket=bucket, Key=key)


def test_evicted_one_chunk_object_refills_in_one_round_trip(origin, bucket, chunk_lotad, svc):
    """A one-chunk object whose version lotad learnt with its own HEAD (a ranged first
    read), then evicted by LRU (lotad still knows its version): a full GET goes to the
    origin as the client sent it, and its 200 is the client's answer and the chunk's fill
    (no 304 first, no GET of lotad's own); the next GET is a hit."""
    d = chunk_lotad(capacity=32 * MiB)
    size = 6 * MiB + 5
    keys = [f"evicted/one-chunk-{i}" for i in range(6)]
    bodies = {k: rand(size) for k in keys}
    for k in keys:
        s3c(origin).put_object(Bucket=bucket, Key=k, Body=bodies[k])
    first = keys[0]
    try:
        s3 = s3c(origin, ep(d))
        status, got, _ = get(s3, bucket, first, Range="bytes=100-4195")
        assert status == 206
        assert_bytes(got, bodies[first][100:4196], "the first 4 KiB range")
        wait_until(lambda: not running_fills(d), 60, "the chunk's fill ends")
        assert len(chunk_files(d)) == 1
        for k in keys[1:]:  # 30 MiB more through a 32 MiB cache: the first goes (LRU)
            assert_bytes(get(s3, bucket, k)[1], bodies[k], k)
            wait_until(lambda: not running_fills(d), 60, "the fill ends")
        assert d.metrics()["cache_evictions"] >= 1
        mark = origin.log_mark()
        status, got, h = get(s3, bucket, first)
        assert_bytes(got, bodies[first], "the full GET after the eviction")
        reqs = origin.log_requests(mark, path=f"/{bucket}/{first}")
        assert [(r.method, r.status, r.bytes) for r in reqs] == [("GET", 200, size)], \
            [r.line for r in reqs]
        assert reqs[0].user != svc[2], "the client's own GET, not lotad's"
        wait_until(lambda: not running_fills(d), 60, "the adopted fill ends")
        mark = origin.log_mark()
        status, got, h = get(s3, bucket, first)
        assert_bytes(got, bodies[first], "the GET after it")
        assert h.get("x-lota-cache") == "hit", h
        assert_warm(origin, bucket, first, mark)
    finally:
        for k in keys:
            s3c(origin).delete_object(Bucket=bucket, Key=k)


# -- real clients, cold and warm --------------------------------------------------------------

def downloader(client, origin, d, bucket, key, tmp_path, stack):
    """download(path) with one real client through lotad d."""
    if client == "aws-cli":
        env = clients.aws_env(origin.access_key, origin.secret_key, workdir=str(tmp_path))
        return lambda out: clients.aws(["s3", "cp", f"s3://{bucket}/{key}", str(out)], ep(d),
                                       env)
    if client == "boto3":
        s3 = s3c(origin, ep(d))
        return lambda out: s3.download_file(bucket, key, str(out))
    crt = stack.enter_context(CrtEndpoint(("127.0.0.1", d.port)))
    return lambda out: crt_download(crt.ip, bucket, key, out, origin.access_key,
                                    origin.secret_key)


@pytest.mark.parametrize("client", ["aws-cli", "boto3", "crt"])
def test_client_cold_then_warm(origin, bucket, chunk_lotad, svc, tmp_path, client):
    """aws s3 cp and boto3 download_file (parallel 8 MiB ranges) and the CRT client
    (parallel 8 MiB ranges, If-Match on every part after the first) on a cold object: the
    origin sends at most 1.02x the object; on a warm pass it sends no body at all (the
    clients' requests get 304s, and lotad asks nothing with a body)."""
    size = 64 * MiB + 5
    key = f"clients/{client}"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad()
    with ExitStack() as stack:
        download = downloader(client, origin, d, bucket, key, tmp_path, stack)
        out = tmp_path / "cold.bin"
        mark = origin.log_mark()
        download(out)
        assert_bytes(out.read_bytes(), body, f"{client}, cold")
        reqs = gets(origin, bucket, key, mark)
        parts = [r for r in reqs if r.user != svc[2] and r.range]
        assert len(parts) >= 8, f"{client} was expected to read in ranges: {reqs}"
        total = sent(reqs)
        assert total <= size * 1.02, f"cold {client}: the origin sent {total} bytes for {size}"

        warm = origin.log_mark()
        out2 = tmp_path / "warm.bin"
        download(out2)
        assert_bytes(out2.read_bytes(), body, f"{client}, warm")
        assert_warm(origin, bucket, key, warm)


@pytest.mark.parametrize("streams", [4, 1])
def test_rclone_upload_then_cold_and_warm_downloads(origin, bucket, chunk_lotad, svc, tmp_path,
                                                    streams):
    """rclone 1.60 (Debian) through lotad: a multipart upload, a listing, then a cold and
    a warm download, with 4 parallel ranged streams or one whole-object GET. Both are
    byte-exact (rclone also checks the MD5 it stored in the object's metadata); cold, the
    origin sends at most 1.02x the object; warm, no body at all; then a delete."""
    size = 48 * MiB + 7
    d = chunk_lotad(chunk_size="8M")
    env = clients.rclone_env(origin.access_key, origin.secret_key, ep(d), str(tmp_path))
    src = tmp_path / "src.bin"
    body = rand(size)
    src.write_bytes(body)
    key = f"rclone/{streams}/obj.bin"
    clients.rclone(["copyto", "--s3-upload-cutoff", "8M", "--s3-chunk-size", "8M", str(src),
                    f"lota:{bucket}/{key}"], env)
    assert s3c(origin).get_object(Bucket=bucket, Key=key)["Body"].read() == body
    ls = clients.rclone(["lsjson", f"lota:{bucket}/rclone/{streams}/"], env).stdout
    assert b'"Size":%d' % size in ls, ls
    par = ["--multi-thread-cutoff", "8M", "--multi-thread-streams", str(streams)]
    if streams == 1:
        par = ["--multi-thread-streams", "0"]
    for n, who in enumerate(("cold", "warm")):
        out = tmp_path / f"{who}.bin"
        mark = origin.log_mark()
        clients.rclone(["copyto", *par, f"lota:{bucket}/{key}", str(out)], env)
        assert_bytes(out.read_bytes(), body, f"rclone {streams} streams, {who}")
        reqs = gets(origin, bucket, key, mark)
        if who == "cold":
            mine = [r for r in reqs if r.user != svc[2]]
            assert (len([r for r in mine if r.range]) >= 2) == (streams > 1), reqs
            assert sent(reqs) <= size * 1.02, f"cold rclone: origin sent {sent(reqs)} of {size}"
            wait_until(lambda: not running_fills(d), 60, "the fills end")
        else:
            assert_warm(origin, bucket, key, mark)
    clients.rclone(["deletefile", f"lota:{bucket}/{key}"], env)
    with pytest.raises(Exception):
        s3c(origin).head_object(Bucket=bucket, Key=key)


def part_view(xs):
    """What a CRT download's parts got: sorted (Range, If-Match?, status, Content-Range,
    body length, body SHA-256)."""
    return sorted((x.req.get("range"), "if-match" in x.req, x.status,
                   x.resp.get("content-range"), x.body_len, x.sha256) for x in xs)


def test_crt_harness_against_the_origin(origin, bucket, svc, tmp_path):
    """The CRT harness itself, straight to the origin: an upload and a download are
    byte-exact; the download is parallel 8 MiB ranged GETs, the first without conditions
    and every later one with If-Match: <ETag> (seen at the relay), and the origin's log
    shows each part as a 206 of its range."""
    size = 24 * MiB + 7
    key = "crt/harness"
    src = tmp_path / "src.bin"
    body = rand(size)
    src.write_bytes(body)
    with CrtEndpoint(("127.0.0.1", origin.port)) as direct:
        assert crt_upload(direct.ip, bucket, key, src, origin.access_key,
                          origin.secret_key) == 200
        etag = s3c(origin).head_object(Bucket=bucket, Key=key)["ETag"]
        mark = origin.log_mark()
        m = direct.relay.mark()
        n = crt_download(direct.ip, bucket, key, tmp_path / "out.bin", origin.access_key,
                         origin.secret_key)
        assert n == size
        assert_bytes((tmp_path / "out.bin").read_bytes(), body, "CRT download")
        parts = sorted(direct.relay.exchanges(m), key=lambda x: x.t_start)
    want = {f"bytes={a}-{min(a + 8 * MiB, size) - 1}" for a in range(0, size, 8 * MiB)}
    assert {x.req.get("range") for x in parts} == want, parts
    assert all(x.req.get("host") == HOST and x.status == 206 for x in parts), parts
    assert "if-match" not in parts[0].req and parts[0].req["range"] == f"bytes=0-{8 * MiB - 1}"
    assert all(x.req.get("if-match") == etag for x in parts[1:]), parts
    logged = {r.range for r in gets(origin, bucket, key, mark) if r.status == 206}
    assert logged == want


def test_crt_if_match_parts_are_hits_and_equal_the_origin(origin, bucket, chunk_lotad,
                                                         tmp_path):
    """The CRT client's parts carry If-Match: "<ETag>"; lotad combines it with its own
    If-None-Match, so on a warm pass every part (If-Match or not) is a 304 at the origin
    and served from the chunks. Part by part, lotad's answers (cold and warm) equal the
    origin's to the same client straight: status, Content-Range, bytes."""
    size = 40 * MiB + 5
    key = "crt/parts"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad()
    with CrtEndpoint(("127.0.0.1", d.port)) as via, \
            CrtEndpoint(("127.0.0.1", origin.port)) as direct:
        crt_download(direct.ip, bucket, key, tmp_path / "direct.bin", origin.access_key,
                     origin.secret_key)
        assert_bytes((tmp_path / "direct.bin").read_bytes(), body, "CRT straight")
        straight = part_view(direct.relay.exchanges())
        assert sum(1 for p in straight if p[1]) >= 4, straight  # If-Match parts

        crt_download(via.ip, bucket, key, tmp_path / "cold.bin", origin.access_key,
                     origin.secret_key)
        assert_bytes((tmp_path / "cold.bin").read_bytes(), body, "CRT through lotad, cold")
        assert part_view(via.relay.exchanges()) == straight

        m = via.relay.mark()
        mark = origin.log_mark()
        m0 = d.metrics()
        crt_download(via.ip, bucket, key, tmp_path / "warm.bin", origin.access_key,
                     origin.secret_key)
        assert_bytes((tmp_path / "warm.bin").read_bytes(), body, "CRT through lotad, warm")
        warm = via.relay.exchanges(m)
        assert part_view(warm) == straight
        assert_warm(origin, bucket, key, mark)
        g = gets(origin, bucket, key, mark)
        assert len([r for r in g if r.status == 304]) >= len(warm), (g, warm)
        assert d.metrics()["cache_chunk_hits"] > m0["cache_chunk_hits"]


# -- the client's own conditions ---------------------------------------------------------------

def test_client_conditions_combined_like_the_origin(origin, bucket, chunk_lotad):
    """Client conditions are combined with lotad's own If-None-Match, never bypassed:
    for each row, a full GET and a ranged GET (bytes=100-1500000, across chunks), cold
    (a key lotad never saw) and warm (a key it holds whole), get through lotad the status
    and bytes the origin gives the same request sent straight to it (and the same error
    Code). The origin's answers, measured (radosgw 16.2.15) and checked again by this
    test; E is the object's ETag, e the same without quotes, x another ETag, LM its
    Last-Modified (the dates are LM -1 h, LM, LM -1 s, LM +1 h):

        condition           full  range
        none                200   206
        IM=E                200   206
        IM=e                200   206
        IM=x                412   412
        IM=x,E              412   412
        IM=*                412   412
        IM=""               412   412
        INM=E               304   304
        INM=x               200   206
        INM=x,E             200   206
        INM=*               200   206
        INM=W/E             200   206
        IMS<LM              200   206
        IMS=LM              304   304
        IMS=LM-1s           200   206
        IMS>LM              304   304
        IMS=bad             400   400
        IUS<LM              412   412
        IUS=LM              200   206
        IUS>LM              200   206
        IUS=bad             400   400
        IM=E+INM=E          304   304
        IM=E+INM=x          200   206
        IM=x+INM=E          412   412
        IM=x+INM=x          412   412
        IM=E+IUS<LM         200   206
        IM=x+IUS>LM         412   412
        IM=E+IMS>LM         304   304
        IM=x+IMS>LM         304   304
        INM=x+IMS>LM        200   206
        INM=E+IMS<LM        304   304
        INM=x+IUS<LM        412   412
        INM=E+IUS<LM        412   412
        IMS<LM+IUS<LM       412   412
        IMS>LM+IUS<LM       304   304
        IMS>LM+IUS>LM       304   304
        IM=E+INM=x+IUS<LM   200   206

    So radosgw, in this order: If-Modified-Since, unless If-None-Match is present (not
    modified since: 304, even when If-Match fails); If-Unmodified-Since, unless If-Match
    is present (modified since: 412); If-Match (one ETag, quotes optional; no lists, no
    `*`): 412; If-None-Match (one ETag; no lists, no `*`, no weak match): 304. A date it
    cannot parse is 400 InvalidArgument. A range changes none of it.

    On the warm key, the rows whose only conditions are If-Match and If-Unmodified-Since
    and which the origin answers 2xx are hits: the origin sends lotad no body for them
    (the CRT client's case)."""
    table = [(m.group(1), int(m.group(2)), int(m.group(3))) for m in re.finditer(
        r"^ {8}(\S+) +(\d{3}) +(\d{3})$", test_client_conditions_combined_like_the_origin.
        __doc__, re.M)]
    assert len(table) == 37, table
    d = chunk_lotad(chunk_size="1M", min_object_size="1M")
    size = 2 * MiB + 1
    rng_hdr, lo, hi = "bytes=100-1500000", 100, 1500000
    body = rand(size)
    cold = {(name, kind): f"cond/cold/{i}-{kind}" for i, (name, _, _) in enumerate(table)
            for kind in ("full", "range")}
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda k: put(origin, bucket, k, body), list(cold.values()) + ["cond/warm"]))
    meta = {}
    for k in list(cold.values()) + ["cond/warm"]:
        h = s3c(origin).head_object(Bucket=bucket, Key=k)["ResponseMetadata"]["HTTPHeaders"]
        meta[k] = (h["etag"], h["last-modified"])

    def ask(key, name, kind, via, tag):
        etag, lm = meta[key]
        hdrs = condition_headers(name, etag, lm)
        if kind == "range":
            hdrs["Range"] = rng_hdr
        hdrs["User-Agent"] = tag
        return answer(origin, d if via else None, bucket, key, hdrs)

    problems = []  # every row is tried; all that differ are reported together

    def differs(a, b, what):
        if a != b:
            problems.append(f"{what}: lotad {a!r}, the origin {b!r}")

    def compare(key, name, kind, phase, want):
        tag = f"cond/{phase}/{name}/{kind}"
        what = f"{phase} {name} {kind}"
        a = ask(key, name, kind, True, tag + "/via")
        b = ask(key, name, kind, False, tag + "/direct")
        if b[0] != want:
            problems.append(f"{what}: the origin answered {b[0]}, the table says {want}")
        differs(a[0], b[0], what + " status")
        if a[0] == b[0] and 200 <= b[0] < 300:
            expect = body if kind == "full" else body[lo:hi + 1]
            if a[1] != b[1] or a[1] != expect:
                problems.append(f"{what}: lotad's {len(a[1])} bytes differ from the origin's "
                                f"{len(b[1])}")
            differs(a[2], b[2], what + " (ETag, Content-Range, Content-Length)")
        elif a[0] == b[0] and b[0] >= 400:
            differs(a[3], b[3], what + " error Code")
        return tag + "/via"

    for name, full, ranged in table:
        for kind, want in (("full", full), ("range", ranged)):
            compare(cold[(name, kind)], name, kind, "cold", want)

    warm_up(origin, d, bucket, "cond/warm", body)
    combinable = [(n, f, r) for n, f, r in table
                  if all(t.startswith(("IM=", "IUS")) for t in n.split("+") if t != "none")
                  and f == 200]
    mark = origin.log_mark()
    hits = [compare("cond/warm", name, kind, "warm", want)
            for name, full, ranged in combinable
            for kind, want in (("full", full), ("range", ranged))]
    reqs = origin.log_requests(mark, path=f"/{bucket}/cond/warm")
    for tag in hits:
        mine = [(r.status, r.bytes) for r in reqs if r.agent == tag]
        if mine != [(304, 0)]:
            problems.append(f"{tag}: not a hit, the origin answered {mine}")
    fills = [(r.method, r.status, r.bytes, r.agent) for r in reqs
             if not (r.agent or "").startswith("cond/") and r.bytes]
    if fills:
        problems.append(f"lotad fetched bodies for hits: {fills}")
    for name, full, ranged in table:
        if (name, full, ranged) not in combinable:
            for kind, want in (("full", full), ("range", ranged)):
                compare("cond/warm", name, kind, "warm", want)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


def condition_headers(name, etag, lm):
    """The request headers of a row of the conditions table."""
    from email.utils import formatdate, parsedate_to_datetime

    t = parsedate_to_datetime(lm).timestamp()
    dates = {"<LM": t - 3600, "=LM": t, "=LM-1s": t - 1, ">LM": t + 3600}
    values = {"E": etag, "e": etag.strip('"'), "x": OTHER_ETAG, "*": "*", "W/E": "W/" + etag,
              '""': '""'}
    names = {"IM": "If-Match", "INM": "If-None-Match", "IMS": "If-Modified-Since",
             "IUS": "If-Unmodified-Since"}
    out = {}
    for tok in name.split("+"):
        if tok == "none":
            continue
        m = re.fullmatch(r"(IM|INM)=(.+)", tok)
        if m:
            out[names[m.group(1)]] = ", ".join(values[v] for v in m.group(2).split(","))
            continue
        m = re.fullmatch(r"(IMS|IUS)(<LM|=LM|=LM-1s|>LM|=bad)", tok)
        assert m, tok
        out[names[m.group(1)]] = ("not a date" if m.group(2) == "=bad"
                                  else formatdate(dates[m.group(2)], usegmt=True))
    return out


def answer(origin, d, bucket, key, headers):
    """(status, body, (ETag, Content-Range, Content-Length), error Code) of a signed GET
    through lotad d, or straight to the origin when d is None. The conditions are signed,
    as boto3 and the CRT client sign them."""
    endpoint = ep(d) if d else origin.url
    url, h = origin.signed_headers("GET", bucket, key, headers=headers, endpoint=endpoint)
    h["Host"] = urllib.parse.urlsplit(endpoint).netloc
    port = d.port if d else origin.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", url[len(endpoint):], headers=h)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    hd = {k.lower(): v for k, v in r.getheaders()}
    m = re.search(rb"<Code>([^<]*)</Code>", body) if r.status >= 400 else None
    return (r.status, body, (hd.get("etag"), hd.get("content-range"), hd.get("content-length")),
            m.group(1).decode() if m else None)


def warm_up(origin, d, bucket, key, body, timeout=30):
    """Reads key through lotad until a read costs the origin no body (all chunks held)."""
    s3 = s3c(origin, ep(d))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        mark = origin.log_mark()
        status, got, _ = get(s3, bucket, key)
        assert_bytes(got, body, f"warming {key}")
        reqs = origin.log_requests(mark, path=f"/{bucket}/{key}")
        if reqs and not any(r.bytes for r in reqs):
            return
        time.sleep(0.2)
    raise AssertionError(f"{key} never became a hit")


# -- an overwrite between two chunk fills ---------------------------------------------------

def test_overwrite_between_chunk_fills_never_mixes(origin, bucket, chunk_lotad, relay_to):
    """A cold multi-chunk read whose fills run slowly (the origin's answers paced to
    4 MiB/s per connection); after its first MiB the object is overwritten straight at the
    origin. The fills after that carry If-Match: <old ETag> and get 412: the client gets
    the old object whole or a cut connection, never a byte of the new one; and nothing of
    it is committed: later reads, whole and of every chunk, are the new object."""
    size = 48 * MiB
    key = "overwrite/obj"
    old = put(origin, bucket, key, rand(size))
    slow = relay_to(rate=4 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M")
    cs = chunk_size(d)
    r = RawGet(origin, d, bucket, key, {"Range": f"bytes=1000-{size - 1}"}, timeout=60)
    assert r.read_head() == 206
    assert r.read(MiB) == MiB
    mark = origin.log_mark()
    new = put(origin, bucket, key, rand(size))
    r.read()
    r.close()
    slow.rate = None  # the rest of the test need not wait
    got = bytes(r.body)
    assert not r.timed_out, "lotad neither finished nor cut the read"
    assert_bytes(got, old[1000:1000 + len(got)], "the read begun before the overwrite")
    assert r.complete or r.eof
    assert any(x.status == 412 for x in gets(origin, bucket, key, mark)), \
        "no fill met the overwrite (the origin never answered 412)"

    s3 = s3c(origin, ep(d))
    status, got, _ = get(s3, bucket, key)
    assert_bytes(got, new, "a whole read after the overwrite")
    for k in range(chunks_of(size, cs)):
        status, got, _ = get(s3, bucket, key, Range=f"bytes={k * cs}-{(k + 1) * cs - 1}")
        assert_bytes(got, new[k * cs:(k + 1) * cs], f"chunk {k} after the overwrite")


# -- slow and stalled leaders ------------------------------------------------------------------

def test_slow_leader_does_not_pace_its_followers(origin, bucket, chunk_lotad):
    """A first reader of a cold object at 1 MiB/s: readers after it (a whole read and a
    range) finish in about the time the origin needs, not at its pace; the fill runs at
    the origin's speed (one body from the origin); the slow reader still gets every byte."""
    size = 64 * MiB
    key = "leader/slow"
    body = put(origin, bucket, key, rand(size))
    t0 = time.monotonic()
    for _ in range(2):
        assert_bytes(s3c(origin).get_object(Bucket=bucket, Key=key)["Body"].read(), body,
                     "straight from the origin")
    direct = (time.monotonic() - t0) / 2
    d = chunk_lotad()
    mark = origin.log_mark()
    leader = RawGet(origin, d, bucket, key)
    assert leader.read_head() == 200
    fast = threading.Event()
    t = threading.Thread(target=leader.read, kwargs=dict(rate=MiB, fast=fast), daemon=True)
    t.start()
    time.sleep(0.5)
    s3 = s3c(origin, ep(d))
    out = {}

    def followers():
        t0 = time.monotonic()
        out["whole"] = get(s3, bucket, key)[1]
        out["range"] = get(s3, bucket, key, Range=f"bytes={20 * MiB}-{50 * MiB}")[1]
        out["took"] = time.monotonic() - t0

    limit = 1.0 + 3 * direct
    f = threading.Thread(target=followers, daemon=True)
    f.start()
    f.join(limit)
    in_time = not f.is_alive()
    slow_got = len(leader.body)
    fast.set()  # from here on the leader reads as fast as it can (a bounded test)
    t.join(60)
    f.join(60)
    assert in_time, f"followers not done after {limit:.2f}s (the origin straight: " \
        f"{direct:.2f}s; done after {out.get('took', 0):.2f}s), the leader at {slow_got} bytes"
    assert_bytes(out["whole"], body, "the follower's whole read")
    assert_bytes(out["range"], body[20 * MiB:50 * MiB + 1], "the follower's range")
    assert slow_got < 8 * MiB, f"the leader was not slow: {slow_got} bytes"
    assert leader.complete, (len(leader.body), leader.length)
    assert_bytes(bytes(leader.body), body, "the slow leader")
    assert sent(gets(origin, bucket, key, mark)) <= size * 1.02


@pytest.mark.parametrize("leader", ["full", "range"])
def test_stalled_leader_does_not_cut_its_followers(origin, bucket, chunk_lotad, leader):
    """A first reader that reads nothing: three readers after it finish byte-exact, well
    before lotad's client-timeout would end the stalled one."""
    size = 48 * MiB
    key = f"leader/stalled-{leader}"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad(client_timeout=10)
    stalled = RawGet(origin, d, bucket, key,
                     {"Range": "bytes=0-"} if leader == "range" else None, rcvbuf=16 * KiB)
    time.sleep(0.3)
    results = [None] * 3
    barrier = threading.Barrier(3)

    def follower(i):
        s3 = s3c(origin, ep(d))
        barrier.wait()
        t0 = time.monotonic()
        try:
            status, got, _ = get(s3, bucket, key)
            results[i] = (hashlib.sha256(got).digest(), time.monotonic() - t0)
        except Exception as e:  # reported below
            results[i] = (repr(e), time.monotonic() - t0)

    threads = [threading.Thread(target=follower, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    stalled.close()
    want = hashlib.sha256(body).digest()
    assert all(r and r[0] == want for r in results), results
    assert all(r[1] < 7 for r in results), f"followers waited on the stalled one: {results}"


# -- a full disk mid-fill --------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB filesystem of the test's own (tmpfs), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "lota-chunks", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_mid_fill_costs_no_client(origin, bucket, chunk_lotad, relay_to, small_disk):
    """The cache's filesystem (24 MiB; capacity says 1 GiB) runs out of space in the
    middle of a 40 MiB object's fills, with four readers on it (two whole, two ranges):
    each gets its bytes byte-exact (a failed fill's readers resume from the origin), no
    partial chunk stays behind, and a later read is byte-exact."""
    size = 40 * MiB
    key = "disk/full"
    body = put(origin, bucket, key, rand(size))
    slow = relay_to(rate=16 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M", capacity="1G",
                    cache_dir=str(small_disk / "cache"))
    asks = [None, None, f"bytes={10 * MiB}-{size - 1}", f"bytes=0-{30 * MiB - 1}"]
    results = [None] * len(asks)

    def reader(i):
        time.sleep(0.2 * i)
        s3 = s3c(origin, ep(d))
        try:
            kw = {"Range": asks[i]} if asks[i] else {}
            status, got, _ = get(s3, bucket, key, **kw)
            results[i] = got
        except Exception as e:  # reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(asks))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    for i, rng in enumerate(asks):
        if rng:
            a, b = (int(v) for v in rng[6:].split("-"))
            want = body[a:b + 1]
        else:
            want = body
        assert isinstance(results[i], bytes), f"reader {i} ({rng}): {results[i]}"
        assert_bytes(results[i], want, f"reader {i} ({rng or 'whole'})")
    assert "No space left" in d.log_text(), "the disk was expected to fill up"
    assert "the disk fills before eviction starts" in d.log_text()  # said at start
    wait_until(lambda: not running_fills(d), 10, "no fill left in tmp/")
    status, got, _ = get(s3c(origin, ep(d)), bucket, key)
    assert_bytes(got, body, "a read after the full disk")


def test_reader_behind_a_spilling_stream_is_not_stuck(origin, bucket, chunk_lotad, small_disk):
    """The disk fills up mid-chunk while the adopted 200's reader is stalled behind it (the
    stream then hands its bytes to that reader from mid-chunk on): the reader, reaching the
    chunk whose fill died, gets its bytes from lotad's own fetch, and a second reader of a
    chunk the stream had begun ahead is not left following a stream paced by the first.
    Both byte-exact (before: both hung with no timeout)."""
    size = 40 * MiB
    key = "disk/spill-behind"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad(chunk_size="4M", capacity="1G", fill_parallelism="1",
                    cache_dir=str(small_disk / "cache"))
    g = RawGet(origin, d, bucket, key, timeout=30)
    assert g.read_head() == 200
    time.sleep(3)  # the stream runs ahead of the stalled reader and fills the disk
    lo, hi = 33 * MiB, 34 * MiB
    g2 = RawGet(origin, d, bucket, key, headers={"Range": f"bytes={lo}-{hi}"}, timeout=30)
    assert g2.read_head() == 206
    g2.read()
    assert not g2.timed_out and bytes(g2.body) == body[lo:hi + 1], (len(g2.body), g2.timed_out)
    g.read()
    assert not g.timed_out, f"stuck at byte {len(g.body)}"
    assert_bytes(bytes(g.body), body, "the stalled whole-object reader")
    assert "No space left" in d.log_text(), "the disk was expected to fill up"


def test_orphan_stream_that_stores_nothing_ends(origin, bucket, chunk_lotad, tmp_path):
    """A full store (1 MiB filesystem) and a client that leaves after 1 MiB of a 200 MiB
    object: the adopted 200, which can store nothing and has no reader, ends; the origin
    does not send the rest (before: all 200 MiB)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "lota-tiny", str(mnt)], check=True)
    try:
        size = 200 * MiB
        key = "disk/orphan"
        put(origin, bucket, key, rand(size))
        d = chunk_lotad(chunk_size="4M", capacity="1G", cache_dir=str(mnt / "cache"))
        mark = origin.log_mark()
        g = RawGet(origin, d, bucket, key, timeout=30)
        assert g.read_head() == 200
        g.read(MiB)
        g.close()
        time.sleep(4)
        d.stop()  # the origin logs what the 200 sent once its connection ends
        sent200 = [r.bytes for r in gets(origin, bucket, key, mark) if r.status == 200]
        assert sent200 and sent200[0] <= 64 * MiB, sent200
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_service_credentials_refused_cost_no_client(origin, chunk_lotad, tag):
    """A bucket whose policy does not let lotad's service user read it: whole and ranged
    GETs of a 24-chunk object by a client that may read it are byte-exact, cold and warm
    (before: the cold 200 handed off to lotad's fetches, which got 403, and the client was
    cut after the first chunk); lotad says once that its credentials are refused there."""
    b2 = "chunks-nosvc-" + tag
    origin.create_bucket(b2)
    size = 24 * MiB + 5
    d = chunk_lotad(chunk_size="1M", min_object_size="1M")
    s3 = s3c(origin, ep(d))
    for i in range(2):
        key = f"refused/{i}"
        body = put(origin, b2, key, rand(size))
        for who in ("cold", "warm"):
            status, got, _ = get(s3, b2, key)
            assert_bytes(got, body, f"{key} whole, {who}")
        status, got, _ = get(s3, b2, key, Range=f"bytes={3 * MiB - 7}-{9 * MiB}")
        assert_bytes(got, body[3 * MiB - 7:9 * MiB + 1], f"{key} ranged")
    assert d.log_text().count("service credentials are refused on bucket " + b2) >= 1


def test_reset_fill_connection_readers_resume(origin, bucket, chunk_lotad, relay_to, svc):
    """The connection of a running chunk fill is reset (the origin stays reachable): its
    readers resume from their offset with a new ranged GET (service credentials,
    If-Match) and finish byte-exact; every fill carried If-Match: <ETag>."""
    size = 32 * MiB
    key = "reset/obj"
    body = put(origin, bucket, key, rand(size))
    etag = s3c(origin).head_object(Bucket=bucket, Key=key)["ETag"]
    slow = relay_to(rate=8 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M")
    asks = [f"bytes=0-{size - 1}", f"bytes={5 * MiB}-{size - 1}"]
    results = [None] * 2

    def reader(i):
        try:
            results[i] = get(s3c(origin, ep(d)), bucket, key, Range=asks[i])[1]
        except Exception as e:  # reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    wait_until(lambda: [x for x in fills_of(slow, svc[0], bucket, key)
                        if x.body_len > 256 * KiB and not x.complete], 20,
               "a chunk fill under way")
    n = slow.reset_where(lambda x: x.access_key == svc[0] and x.method == "GET"
                         and not x.complete)
    assert n >= 1
    for th in threads:
        th.join(120)
    for i, rng in enumerate(asks):
        a = int(rng[6:].split("-")[0])
        assert isinstance(results[i], bytes), f"reader {i}: {results[i]}"
        assert_bytes(results[i], body[a:], f"reader {i} ({rng})")
    fills = fills_of(slow, svc[0], bucket, key)
    assert fills and all(x.req.get("if-match") == etag for x in fills), fills
    m = d.metrics()  # the reset was recovered from: as a resume or as a retried fill
    assert m["cache_chunk_resumes"] + m["cache_fill_retries"] >= 1
    status, got, _ = get(s3c(origin, ep(d)), bucket, key)
    assert_bytes(got, body, "a read after the reset")


# -- crashes ------------------------------------------------------------------------------------

def test_kill9_mid_chunk_fill_then_restart(origin, bucket, chunk_lotad, relay_to):
    """kill -9 of lotad while a whole read's chunks are being filled: after the restart
    every chunk committed before the kill is still there (and nothing else: no partial
    chunk), the origin is asked only for the chunks that were missing, and reads are
    byte-exact."""
    size = 64 * MiB
    key = "crash/obj"
    body = put(origin, bucket, key, rand(size))
    slow = relay_to(rate=8 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M")
    cs = chunk_size(d)
    n = chunks_of(size, cs)
    s3 = s3c(origin, ep(d))
    status, got, _ = get(s3, bucket, key, Range=f"bytes=0-{4 * cs - 1}")
    assert_bytes(got, body[:4 * cs], "the first four chunks")
    wait_until(lambda: len(chunk_files(d)) >= 4, 20, "four chunks committed")

    r = RawGet(origin, d, bucket, key, {"Range": "bytes=0-"})
    assert r.read_head() == 206
    assert r.read(8 * cs) == 8 * cs
    assert_bytes(bytes(r.body), body[:len(r.body)], "the whole read, before the kill")
    d.kill9()
    r.close()
    kept = chunk_files(d)
    assert 4 <= len(kept) < n, f"{len(kept)} chunks committed of {n}: not mid-fill"

    d.start()
    slow.rate = None  # the rest of the test need not wait
    assert not running_fills(d), "a running fill's file survived the restart"
    assert chunk_files(d) == kept, "the committed chunks changed over the restart"
    mark = origin.log_mark()
    status, got, _ = get(s3, bucket, key, Range="bytes=0-")
    assert_bytes(got, body, "the whole read after the restart")
    reqs = gets(origin, bucket, key, mark)
    assert sent(reqs) <= (n - len(kept)) * cs * 1.02, \
        f"{len(kept)} chunks were held, yet the origin sent {sent(reqs)} bytes"
    mark = origin.log_mark()
    status, got, _ = get(s3, bucket, key)
    assert_bytes(got, body, "a whole GET after the restart")
    assert_warm(origin, bucket, key, mark)


def test_origin_killed_mid_chunk_fill_cuts_clients(make_lotad, tmp_path):
    """radosgw killed (kill -9) while three reads of a cold object are being filled: each
    client gets a cut connection whose bytes are the object's (never a short body passed
    as complete, never a wrong byte); once radosgw is back (same data), reads through the
    same lotad are byte-exact: nothing partial was committed."""
    o2 = Origin(tmp_path / "o2").start()
    slow = None
    try:
        b = o2.create_bucket("dying")
        size = 64 * MiB
        body = put(o2, b, "obj", rand(size))
        slow = Relay(("127.0.0.1", 0), ("127.0.0.1", o2.port), rate=8 * MiB).start()
        creds = write_creds(tmp_path / "o2-creds", o2.access_key, o2.secret_key)
        d = make_lotad(origin_url=slow.url, chunk_size="4M", service_credentials=creds)
        asks = [None, f"bytes={8 * MiB}-", f"bytes=0-{size - 1}"]
        readers = [RawGet(o2, d, b, "obj", {"Range": a} if a else None) for a in asks]
        for r, a in zip(readers, asks):
            assert r.read_head() == (206 if a else 200)
        threads = [threading.Thread(target=r.read, daemon=True) for r in readers]
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(o2.pids()["radosgw"], signal.SIGKILL)
        for t in threads:
            t.join(90)
        slow.rate = None  # the rest of the test need not wait
        for r, a in zip(readers, asks):
            lo = int(a[6:].split("-")[0]) if a else 0
            assert r.length == size - lo, (a, r.headers)
            assert not r.timed_out, f"{a}: neither finished nor cut"
            assert not r.complete, f"{a}: complete although the origin died mid-fill"
            assert r.eof
            assert_bytes(bytes(r.body), body[lo:lo + len(r.body)], f"the cut read {a}")
            r.close()

        o2.restart_radosgw()
        s3 = s3c(o2, ep(d))
        status, got, _ = get(s3, b, "obj")
        assert_bytes(got, body, "a whole read once radosgw is back")
        status, got, _ = get(s3, b, "obj", Range=f"bytes={8 * MiB}-")
        assert_bytes(got, body[8 * MiB:], "a range once radosgw is back")
    finally:
        if slow:
            slow.stop()
        o2.stop()


def test_chunk_fetches_reuse_kept_alive_connections(origin, bucket, chunk_lotad, relay_to, svc):
    """lotad's chunk fetches of one read (fill-parallelism 1: one after another) go on one
    kept-alive connection to the origin, not a new connection (a TCP and TLS handshake to a
    remote origin) per chunk; bytes byte-exact. After the origin restarts (its idle
    connections closed under lotad), the next fetches work at once, with no fill retry."""
    r = relay_to()
    d = chunk_lotad(origin_url=r.url, chunk_size="4M", fill_parallelism="1")
    size = 32 * MiB
    key = f"pool/{uuid.uuid4().hex[:10]}"
    body = put(origin, bucket, key, rand(size))
    s3 = s3c(origin, ep(d))
    mark = r.mark()
    status, got, _ = get(s3, bucket, key, Range=f"bytes=0-{size - 1}")
    assert_bytes(got, body, "a read of 8 chunks")
    wait_until(lambda: d.metrics()["cache_fills_committed"] >= 8, 30, "every chunk committed")
    fills = [x for x in fills_of(r, svc[0], bucket, key, mark) if "range" in x.req]
    assert len(fills) == 8, [(x.req.get("range"), x.status) for x in fills]
    conns = {x.conn_id for x in fills}
    assert len(conns) <= 2, f"8 chunk fetches on {len(conns)} connections"
    assert d.metrics()["origin_connections_reused"] >= 6

    retries = d.metrics()["cache_fill_retries"]
    os.kill(origin.pids()["radosgw"], signal.SIGKILL)
    wait_until(lambda: not os.path.exists(f"/proc/{origin.pids()['radosgw']}"), 10,
               "radosgw gone")
    origin.restart_radosgw()
    key2 = f"pool/{uuid.uuid4().hex[:10]}"
    body2 = put(origin, bucket, key2, rand(size))
    status, got, _ = get(s3, bucket, key2, Range=f"bytes=0-{size - 1}")
    assert_bytes(got, body2, "a read after the origin restarted")
    assert d.metrics()["cache_fill_retries"] == retries


def restart_with_concurrency_limit(o, n):
    """radosgw again with rgw_max_concurrent_requests = n: past n requests in progress it
    answers 503 SlowDown ("reached max requests"), as a loaded origin does."""
    pid = o.pids()["radosgw"]
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)  # a radosgw restart_radosgw() started is our child
    except ChildProcessError:
        pass
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "radosgw gone")
    with open(os.path.join(o.dir, "ceph.conf"), "a") as f:
        f.write(f"\n[client.rgw]\nrgw_max_concurrent_requests = {n}\n")
    o.restart_radosgw()


@pytest.fixture(scope="module")
def slowdown_origin(tmp_path_factory):
    """An origin of its own that answers 503 SlowDown past one request in progress:
    (Origin, bucket, service credentials file)."""
    work = tmp_path_factory.mktemp("slowdown")
    o2 = Origin(work / "o2").start()
    try:
        b = o2.create_bucket("slowdown")
        restart_with_concurrency_limit(o2, 1)
        yield o2, b, write_creds(work / "o2-creds", o2.access_key, o2.secret_key)
    finally:
        o2.stop()


def test_slow_down_on_chunk_fills_is_retried(make_lotad, slowdown_origin):
    """radosgw answers 503 SlowDown to requests beyond the one in progress, so lotad's
    parallel chunk fills of one read (fill-parallelism 4) collide: each 503 is retried after
    a random back-off, the retries are counted, the client gets every byte, and each
    chunk's bytes still leave the origin once."""
    o2, b, creds = slowdown_origin
    size = 32 * MiB
    body = put(o2, b, "obj", rand(size))
    d = make_lotad(origin_url=o2.url, chunk_size="4M", fill_parallelism="4",
                   service_credentials=creds)
    mark = o2.log_mark()
    status, got, h = get(s3c(o2, ep(d)), b, "obj", Range=f"bytes=0-{size - 1}")
    assert status == 206
    assert_bytes(got, body, "a read whose fills met 503s")
    wait_until(lambda: d.metrics()["cache_fills_committed"] >= size // (4 * MiB), 30,
               "every chunk committed")
    reqs = o2.log_requests(mark, "GET", f"/{b}/obj")
    assert any(r.status == 503 for r in reqs), [(r.status, r.range) for r in reqs]
    assert d.metrics()["cache_fill_retries"] >= 1
    assert sum(r.bytes for r in reqs if r.status == 206) == size, \
        [(r.status, r.range, r.bytes) for r in reqs]
    # and the read is now whole in the cache: no body from the origin
    mark = o2.log_mark()
    status, got, h = get(s3c(o2, ep(d)), b, "obj", Range=f"bytes=0-{size - 1}")
    assert_bytes(got, body, "the warm read")
    assert not [r for r in o2.log_requests(mark, "GET", f"/{b}/obj") if r.status == 206]


def test_resume_after_a_full_disk_retries_slow_down(make_lotad, slowdown_origin, small_disk):
    """A chunk's fill dies of a full disk while the origin (503 SlowDown past two requests
    in progress) still counts the dead fill's request (the network holds its connection, as
    for a vanished host) and another client holds the other place: the reader's resume
    from its offset, lotad's own ranged GET, meets a 503, is retried after a back-off and
    the client gets every byte (before: cut at the first 503)."""
    o2, b, creds = slowdown_origin
    size = 16 * MiB  # one chunk
    key = f"resume/{uuid.uuid4().hex[:10]}"
    body = put(o2, b, key, rand(size))
    put(o2, b, "holder", rand(32 * MiB))
    st = os.statvfs(small_disk)
    with open(small_disk / "filler", "wb") as f:  # 3 MiB left for the cache
        f.write(bytes(st.f_bavail * st.f_frsize - 3 * MiB))
    restart_with_concurrency_limit(o2, 2)
    r = Relay(("127.0.0.1", 0), ("127.0.0.1", o2.port), rate=2 * MiB).start()
    holder = None
    try:
        d = make_lotad(origin_url=r.url, fill_parallelism="1", capacity="1G",
                       cache_dir=str(small_disk / "cache"), service_credentials=creds)
        r.hold()
        result = {}

        def read():
            try:
                result["got"] = get(s3c(o2, ep(d)), b, key, Range=f"bytes=0-{size - 1}")[1]
            except Exception as e:  # reported below
                result["got"] = repr(e)

        th = threading.Thread(target=read)
        th.start()
        # once the client is authorized (304) and the fill runs, another client takes
        # the origin's second place and does not read its answer
        wait_until(lambda: any(x.status == 304 for x in r.exchanges()) or not th.is_alive(),
                   30, "the client's 304")
        holder = socket.create_connection(("127.0.0.1", o2.port), timeout=10)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        url = urllib.parse.urlsplit(o2.presign(b, "holder"))
        holder.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n"
                       .encode())
        assert holder.recv(12) == b"HTTP/1.1 200"

        def resume_slowed_down():  # a 503 to a range that does not start at the chunk
            return [x for x in r.exchanges() if x.status == 503 and
                    not x.req.get("range", "bytes=0-").startswith("bytes=0-")]

        wait_until(lambda: resume_slowed_down() or not th.is_alive(), 60,
                   "a 503 to lotad's resume")
        holder.close()
        holder = None
        r.rate = None
        r.release()
        th.join(90)
        assert isinstance(result.get("got"), bytes), result.get("got")
        assert_bytes(result["got"], body, "a read whose resume met a 503")
        assert resume_slowed_down(), [(x.status, x.req.get("range")) for x in r.exchanges()]
        assert "No space left" in d.log_text(), "the disk was expected to fill up"
        assert d.metrics()["cache_chunk_resumes"] >= 1
    finally:
        if holder:
            holder.close()
        r.stop()
        restart_with_concurrency_limit(o2, 1)


@pytest.mark.parametrize("parallelism", ["4", "1"])
def test_cold_whole_get_hands_off_to_parallel_fills(origin, bucket, chunk_lotad, relay_to, svc,
                                                    parallelism):
    """A cold whole-object GET on one connection (curl, get_object), the origin paced to
    16 MiB/s per connection. With fill-parallelism 4 the client's own 200 fills the first
    chunk and ends where lotad's parallel fetches (service credentials, If-Match: <ETag>)
    have taken the chunks ahead, so the read runs at several connections' pace; with 1 the
    200 carries the whole object. Either way the client gets every byte in order, the
    origin sends the object about once, and a second read is served from the cache."""
    size = 40 * MiB + 3
    key = f"handoff/{parallelism}"
    path = f"/{bucket}/{key}"
    body = put(origin, bucket, key, rand(size))
    etag = s3c(origin).head_object(Bucket=bucket, Key=key)["ETag"]
    slow = relay_to(rate=16 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M", fill_parallelism=parallelism)
    cs = chunk_size(d)
    status, got, _ = get(s3c(origin, ep(d)), bucket, key)
    assert status == 200
    assert_bytes(got, body, "the cold whole-object read")
    n = chunks_of(size, cs)
    wait_until(lambda: d.metrics()["cache_fills_committed"] >= n, 30, "every chunk committed")
    gets = [x for x in slow.exchanges() if x.method == "GET" and x.path == path]
    own = [x for x in gets if x.access_key != svc[0]]
    fills = fills_of(slow, svc[0], bucket, key)
    assert len(own) == 1 and own[0].status == 200, own
    assert all(x.req.get("if-match") == etag and x.status == 206 for x in fills), fills
    sent = sum(x.body_len for x in gets)
    if parallelism == "1":
        assert own[0].body_len == size and not fills, gets
        assert d.metrics()["cache_stream_handoffs"] == 0
    else:
        assert d.metrics()["cache_stream_handoffs"] == 1
        assert own[0].body_len < 3 * cs, f"the 200 went on past its handoff: {own[0]}"
        assert len(fills) >= n - 2, fills
        at_once = max_overlap([(x.t_start, x.t_end or time.monotonic()) for x in gets])
        assert at_once >= 3, f"{at_once} origin GETs at once"
        # what the origin sent past the handoff is the relay's and the socket's bytes
        assert sent <= size + 2 * cs, f"origin sent {sent} for {size}: {gets}"
    mark = len(slow.exchanges())
    status, got, _ = get(s3c(origin, ep(d)), bucket, key)
    assert_bytes(got, body, "the warm read")
    assert not [x for x in slow.exchanges()[mark:] if x.body_len], "warm read pulled a body"


# -- pre-staging ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["head", "lotactl"])
def test_prestage_commits_every_chunk_before_answering(origin, bucket, chunk_lotad, how):
    """Pre-staging a multi-chunk object (a signed HEAD with Range: bytes=0-0, or lotactl
    prestage of its prefix) answers once every chunk is committed (all of them are in
    the store when the answer comes; the origin sent each byte once); then reads cost the
    origin no body."""
    size = 40 * MiB + 1
    key = f"prestage-{how}/obj"
    body = put(origin, bucket, key, rand(size))
    d = chunk_lotad(chunk_size="4M")
    n = chunks_of(size, chunk_size(d))
    mark = origin.log_mark()
    if how == "head":
        r = s3c(origin, ep(d)).head_object(Bucket=bucket, Key=key, Range="bytes=0-0")
        assert r["ResponseMetadata"]["HTTPStatusCode"] in (200, 206)
    else:
        env = origin.client_env(endpoint=f"http://127.0.0.1:{d.port}")
        rc, out, err = lotactl("prestage", f"s3://{bucket}/prestage-{how}/", env=env)
        assert rc == 0, out + err
    assert len(chunk_files(d)) == n, f"answered with {len(chunk_files(d))} of {n} chunks"
    assert_each_byte_once(gets(origin, bucket, key, mark), size)

    s3 = s3c(origin, ep(d))
    mark = origin.log_mark()
    status, got, _ = get(s3, bucket, key)
    assert_bytes(got, body, "a read after pre-staging")
    status, got, _ = get(s3, bucket, key, Range=f"bytes={size - 5 * MiB}-")
    assert_bytes(got, body[size - 5 * MiB:], "a range after pre-staging")
    assert_warm(origin, bucket, key, mark)


# -- metrics ------------------------------------------------------------------------------------

def test_chunk_metrics(origin, bucket, chunk_lotad, relay_to):
    """/metrics has the chunk counters, and they move as they must: two cold readers of
    the same 7 chunks at once cost 7 fills (one follows the other) and fetch the object
    once, as fills; a warm pass counts hits and no fill; a pre-stage's bytes are counted
    as pre-stage; a healthy origin needs no resume and no retry."""
    slow = relay_to(rate=32 * MiB)
    d = chunk_lotad(origin_url=slow.url, chunk_size="4M")
    m0 = d.metrics()
    missing = [n for n in METRICS if n not in m0]
    assert not missing, f"missing from /metrics: {missing}"

    size = 24 * MiB + 1
    key = "metrics/obj"
    body = put(origin, bucket, key, rand(size))
    n = chunks_of(size, chunk_size(d))
    barrier = threading.Barrier(2)
    out = [None, None]

    def reader(i):
        s3 = s3c(origin, ep(d))
        barrier.wait()
        out[i] = get(s3, bucket, key, Range="bytes=0-")[1]

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i in range(2):
        assert_bytes(out[i], body, f"cold reader {i}")
    m1 = d.metrics()
    delta = {k: m1[k] - m0[k] for k in METRICS}
    assert delta["cache_chunk_fills"] == n, delta
    assert delta["cache_chunk_misses"] >= 1, delta
    assert delta["cache_chunk_follows"] >= 1, delta
    assert size <= delta["bytes_from_origin_fill"] <= size * 1.02, delta
    assert delta["bytes_from_origin_relay"] == 0, delta

    status, got, _ = get(s3c(origin, ep(d)), bucket, key, Range="bytes=0-")
    assert_bytes(got, body, "warm")
    m2 = d.metrics()
    assert m2["cache_chunk_hits"] > m1["cache_chunk_hits"]
    assert m2["cache_chunk_fills"] == m1["cache_chunk_fills"]
    assert m2["bytes_from_origin_fill"] == m1["bytes_from_origin_fill"]

    key2 = "metrics/prestaged"
    put(origin, bucket, key2, rand(12 * MiB))
    s3c(origin, ep(d)).head_object(Bucket=bucket, Key=key2, Range="bytes=0-0")
    m3 = d.metrics()
    pre = m3["bytes_from_origin_prestage"] - m2["bytes_from_origin_prestage"]
    assert 12 * MiB <= pre <= 12 * MiB * 1.02, pre
    assert m3["cache_chunk_resumes"] == m0["cache_chunk_resumes"]
    assert m3["cache_fill_retries"] == m0["cache_fill_retries"]


# -- config: chunk-size and fill-parallelism ------------------------------------------------

def test_chunk_config_keys(chunk_lotad):
    """chunk-size (default 16M) and fill-parallelism (default 4) are config keys."""
    p = subprocess.run([os.path.join(BUILD, "lotad"), "--help"], capture_output=True,
                       text=True, timeout=10)
    lines = {ln.split()[0]: ln for ln in p.stdout.splitlines() if ln.strip().startswith("--")}
    assert "(default: 16M)" in lines.get("--chunk-size", ""), p.stdout
    assert "(default: 4)" in lines.get("--fill-parallelism", ""), p.stdout
    d = chunk_lotad(chunk_size="16M", fill_parallelism=4)
    assert d.alive()


@pytest.mark.parametrize("parallelism", [None, 1], ids=["default", "1"])
def test_fill_parallelism_bounds_fills_per_object(origin, bucket, chunk_lotad, relay_to, svc,
                                                 parallelism):
    """One client reads a cold 40 MiB object in one ranged GET, the origin's answers paced
    to 16 MiB/s per connection: lotad's fills (service credentials, If-Match: <ETag>, one
    per chunk) run at most fill-parallelism at once, and by default more than one at once
    (read-ahead for a reader moving forward)."""
    size = 40 * MiB
    key = f"parallel/{parallelism}"
    body = put(origin, bucket, key, rand(size))
    etag = s3c(origin).head_object(Bucket=bucket, Key=key)["ETag"]
    slow = relay_to(rate=16 * MiB)
    cfg = {"chunk_size": "4M"}
    if parallelism:
        cfg["fill_parallelism"] = parallelism
    d = chunk_lotad(origin_url=slow.url, **cfg)
    want = int(d.cfg.get("fill-parallelism", "4"))
    status, got, _ = get(s3c(origin, ep(d)), bucket, key, Range=f"bytes=0-{size - 1}")
    assert_bytes(got, body, "the single-stream read")
    fills = fills_of(slow, svc[0], bucket, key)
    assert all(x.req.get("if-match") == etag and x.status == 206 for x in fills), fills
    assert len(fills) == chunks_of(size, chunk_size(d)), fills
    at_once = max_overlap([(x.t_start, x.t_end or time.monotonic()) for x in fills])
    assert at_once <= want, f"{at_once} fills at once, fill-parallelism {want}"
    if want > 1:
        assert at_once >= 2, "fills ran one at a time for a reader moving forward"


def test_zero_byte_object_with_no_minimum_size(origin, bucket, chunk_lotad):
    """min-object-size 0 and a zero-byte object: a range (416), a whole GET (200, empty)
    and a HEAD answer as the origin does, again and again (before: after lotad's HEAD
    learnt size 0, every whole GET got 503)."""
    key = f"empty/{uuid.uuid4().hex[:10]}"
    put(origin, bucket, key, b"")
    d = chunk_lotad(min_object_size="0")
    direct, via = s3c(origin), s3c(origin, ep(d))
    for _ in range(3):
        for c in (direct, via):
            with pytest.raises(Exception) as e:
                c.get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
        for c in (direct, via):
            status, got, h = get(c, bucket, key)
            assert (status, got, h["content-length"]) == (200, b"", "0")
            assert c.head_object(Bucket=bucket, Key=key)["ContentLength"] == 0


def test_http10_keep_alive_hit_says_keep_alive(origin, bucket, chunk_lotad):
    """An HTTP/1.0 client that asks for keep-alive keeps its connection only if the answer
    says so: lotad's own answers (a hit) say `Connection: keep-alive`, and a second
    request on the connection is answered (before: no header, as if it would close)."""
    key = f"http10/{uuid.uuid4().hex[:10]}"
    body = put(origin, bucket, key, rand(2 * MiB))
    d = chunk_lotad(min_object_size="0")
    url = urllib.parse.urlsplit(origin.presign(bucket, key, client=s3c(origin, ep(d))))
    req = (f"GET {url.path}?{url.query} HTTP/1.0\r\nHost: {url.netloc}\r\n"
           f"Connection: keep-alive\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        f = s.makefile("rb")
        for i in range(3):  # a miss, then hits, on one connection
            s.sendall(req)
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            hdrs = {}
            while (line := f.readline()) not in (b"\r\n", b""):
                k, _, v = line.decode().partition(":")
                hdrs[k.strip().lower()] = v.strip()
            assert hdrs.get("connection", "").lower() == "keep-alive", (i, hdrs)
            assert_bytes(f.read(int(hdrs["content-length"])), body, f"read {i}")
        assert hdrs.get("x-lota-cache") == "hit", hdrs
