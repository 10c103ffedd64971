"""The cache in front of a real radosgw, with real clients, byte for byte: hits confirmed
by the origin (304, no body), ranges sliced locally, background fills for ranged reads
and pre-staging, one origin fill for a herd of readers, write invalidation, the
Cache-Control rules, authorization (nobody the origin refuses gets a cached byte),
crashes of lotad and of the origin mid-fill, and LRU eviction under a small capacity.

What the origin sent is read from its request log (Origin.log_requests): a hit is a 304
with no body, a miss a 200 carrying the object's size."""

import hashlib
import http.client
import os
import signal
import subprocess
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import boto3  # noqa: F401  (Debian's python3-boto3, through Origin.s3)
import pytest
from botocore.exceptions import ClientError

import clients
from origin import Origin
from relay import Relay

HOST = "cwlota.com"
MiB = 1024 * 1024
BIG = 64 * MiB
CHUNK = 16 * MiB  # lotad's default chunk-size: the cache unit


def chunks(n):
    """How many chunks an object of n bytes is cached in."""
    return max(1, (n + CHUNK - 1) // CHUNK)


# -- helpers ---------------------------------------------------------------------------

def ep(d):
    return f"http://{HOST}:{d.port}"


def data(n):
    return os.urandom(n)


def put(origin, bucket, key, body):
    origin.s3().put_object(Bucket=bucket, Key=key, Body=body)
    return body


def get(s3, bucket, key, **kw):
    """(body, lower-cased response headers) of a boto3 get_object."""
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return r["Body"].read(), r["ResponseMetadata"]["HTTPHeaders"]


def gets(origin, bucket, key, since):
    """What the origin logged for GETs of bucket/key since the mark: [(status, bytes)]."""
    return [(r.status, r.bytes) for r in origin.log_requests(since, "GET", f"/{bucket}/{key}")]


def bodies_sent(origin, bucket, key, since):
    """Object bytes the origin sent for bucket/key (200 and 206 bodies) since the mark."""
    return sum(b for s, b in gets(origin, bucket, key, since) if s in (200, 206))


def raw(origin, d, method, bucket, key, headers=None, access=None, secret=None, read=None):
    """A SigV4-signed request through lotad with http.client; headers are added after
    signing (unsigned, as a proxy may add them). Returns (status, headers, body) or, with
    read=N, (status, headers, response, conn) after reading nothing."""
    url, h = origin.signed_headers(method, bucket, key, access=access, secret=secret,
                                   endpoint=ep(d))
    h["Host"] = f"{HOST}:{d.port}"
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    conn.request(method, url[len(ep(d)):], headers=h)
    r = conn.getresponse()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if read is not None:
        return r.status, hdrs, r, conn
    body = r.read()
    conn.close()
    return r.status, hdrs, body


def url_get(url, headers=None):
    """A plain GET of a (presigned) URL through lotad: (status, headers, body)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_metric(d, name, at_least, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = d.metrics().get(name, 0)
        if v >= at_least:
            return v
        time.sleep(0.1)
    raise AssertionError(f"{name} stayed below {at_least}: {d.metrics().get(name)}\n"
                         f"{d.log_tail()}")


def service_creds(tmp_path, origin):
    p = tmp_path / "service-credentials"
    p.write_text(f"[default]\naws_access_key_id = {origin.access_key}\n"
                 f"aws_secret_access_key = {origin.secret_key}\n")
    return str(p)


def cache_files(d):
    """{name: size} of the committed files in lotad's cache directory."""
    out = {}
    top = os.path.join(d.cfg["cache-dir"], "objects")
    for root, _, files in os.walk(top):
        for f in files:
            out[f] = os.path.getsize(os.path.join(root, f))
    return out


def assert_no_cached_byte(status, hdrs, body, secret_body):
    assert status == 403, (status, body[:300])
    assert "x-lota-cache" not in hdrs
    assert len(body) < 4096 and secret_body[:64] not in body
    assert b"<Error>" in body


@pytest.fixture(scope="module")
def bucket(origin):
    name = "cache-" + uuid.uuid4().hex[:12]
    origin.create_bucket(name)
    yield name
    s3 = origin.s3()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def big(origin, bucket):
    """One 64 MiB object shared by tests that only read it."""
    return put(origin, bucket, "shared/big64", data(BIG))


# -- hits ------------------------------------------------------------------------------

def test_second_get_is_a_304_hit(origin, make_lotad, bucket, big):
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    mark = origin.log_mark()
    body, h = get(s3, bucket, "shared/big64")
    assert body == big
    assert h.get("x-lota-cache") is None
    assert gets(origin, bucket, "shared/big64", mark) == [(200, BIG)]

    mark = origin.log_mark()
    body, h = get(s3, bucket, "shared/big64")
    assert body == big
    assert h["x-lota-cache"] == "hit"
    assert h["content-length"] == str(BIG)
    assert gets(origin, bucket, "shared/big64", mark) == [(304, 0)]
    wait_metric(d, "cache_fills_committed", chunks(BIG))  # commits run after the client
    m = d.metrics()
    assert m["cache_hits"] == 1 and m["cache_misses"] == 1
    assert m["cache_fills_committed"] == chunks(BIG)
    assert m["cache_bytes_served"] == 2 * BIG  # the miss too is read from its chunks


# -- ranges ----------------------------------------------------------------------------

def check_ranges(s3, bucket, key, body, want_cache):
    n = len(body)
    for rng, lo, hi in (("bytes=0-999", 0, 999), ("bytes=30000000-31048575", 30000000, 31048575),
                        ("bytes=-4321", n - 4321, n - 1), (f"bytes={n - 10}-", n - 10, n - 1),
                        (f"bytes=5-{n + 100}", 5, n - 1)):
        got, h = get(s3, bucket, key, Range=rng)
        assert got == body[lo:hi + 1], rng
        assert h["content-range"] == f"bytes {lo}-{hi}/{n}", rng
        want = want_cache if isinstance(want_cache, tuple) else (want_cache,)
        assert h.get("x-lota-cache") in want, rng
    with pytest.raises(ClientError) as e:
        get(s3, bucket, key, Range=f"bytes={n}-{n + 10}")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_ranges_cold_then_warm(origin, make_lotad, bucket, tmp_path):
    """A cold ranged read learns the version with lotad's own HEAD, has the origin confirm
    it for the client (304) and gets its bytes from the one chunk they are in, fetched by
    lotad: the origin sends that chunk, not the object."""
    key = "ranges/r64"
    body = put(origin, bucket, key, data(BIG))
    d = make_lotad(service_credentials=service_creds(tmp_path, origin))
    s3 = origin.s3(endpoint=ep(d))

    mark = origin.log_mark()
    got, h = get(s3, bucket, key, Range="bytes=0-0")
    assert got == body[:1] and h.get("x-lota-cache") == "miss"
    wait_metric(d, "cache_fills_committed", 1)
    assert d.metrics()["cache_fills_started"] == 1
    assert bodies_sent(origin, bucket, key, mark) == CHUNK

    # The first pass fills the chunks the ranges touch; the second is all hits.
    check_ranges(s3, bucket, key, body, ("hit", "follow"))
    mark = origin.log_mark()
    check_ranges(s3, bucket, key, body, "hit")
    log = gets(origin, bucket, key, mark)
    assert log and all(b == 0 for s, b in log if s != 416), log
    assert sum(1 for s, _ in log if s == 304) >= 5, log


def test_ranges_cold_without_service_credentials(origin, make_lotad, bucket):
    key = "ranges/cold64"
    body = put(origin, bucket, key, data(BIG))
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    check_ranges(s3, bucket, key, body, None)
    # Without service credentials a ranged read cannot fill: nothing was cached.
    assert d.metrics()["cache_fills_started"] == 0
    assert "service" in d.log_text()


def test_aws_cli_multirange_download_fills_once(origin, make_lotad, bucket, tmp_path):
    key = "ranges/cli200"
    size = 200 * MiB
    src = tmp_path / "src.bin"
    with open(src, "wb") as f:
        for _ in range(size // (8 * MiB)):
            f.write(os.urandom(8 * MiB))
    origin.s3().upload_file(str(src), bucket, key)
    d = make_lotad(service_credentials=service_creds(tmp_path, origin))
    env = clients.aws_env(origin.access_key, origin.secret_key, workdir=str(tmp_path))
    out = tmp_path / "out.bin"

    mark = origin.log_mark()
    clients.aws(["s3", "cp", f"s3://{bucket}/{key}", str(out)], ep(d), env)
    assert out.read_bytes() == src.read_bytes()
    ranged = [r for r in origin.log_requests(mark, "GET", f"/{bucket}/{key}")]
    assert len(ranged) > 10, "aws cli was expected to download in parallel ranges"
    wait_metric(d, "cache_fills_committed", chunks(size), timeout=60)
    # each chunk once: the ranges are served from chunks lotad fetched, not relayed
    assert bodies_sent(origin, bucket, key, mark) <= size * 1.02
    assert d.metrics()["cache_fills_started"] == chunks(size)

    mark = origin.log_mark()
    got, h = get(origin.s3(endpoint=ep(d)), bucket, key)
    assert h["x-lota-cache"] == "hit"
    assert hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert gets(origin, bucket, key, mark) == [(304, 0)]


# -- one fill for a herd ---------------------------------------------------------------

def test_sixteen_cold_readers_one_origin_body(origin, make_lotad, bucket):
    key = "herd/h64"
    body = put(origin, bucket, key, data(BIG))
    want = hashlib.sha256(body).hexdigest()
    d = make_lotad()
    n = 16
    s3s = [origin.s3(endpoint=ep(d)) for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def reader(i):
        barrier.wait()
        try:
            r = s3s[i].get_object(Bucket=bucket, Key=key)
            h = hashlib.sha256()
            for chunk in r["Body"].iter_chunks(1 * MiB):
                h.update(chunk)
            results[i] = (h.hexdigest(), r["ResponseMetadata"]["HTTPHeaders"].get("x-lota-cache"))
        except Exception as e:  # reported below
            results[i] = (repr(e), None)

    mark = origin.log_mark()
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r and r[0] == want for r in results), results
    log = gets(origin, bucket, key, mark)
    assert sum(b for s, b in log if s == 200) == BIG, log
    assert sum(1 for s, _ in log if s == 200) == 1, log
    wait_metric(d, "cache_fills_committed", chunks(BIG))  # commits run after the readers
    m = d.metrics()
    assert m["cache_fills_started"] == chunks(BIG)
    assert m["cache_fills_committed"] == chunks(BIG)
    assert m["cache_coalesced"] + m["cache_hits"] == n - 1
    assert m["cache_coalesced"] >= 1


# -- pre-staging -----------------------------------------------------------------------

def test_prestage_then_get_fetches_no_body(origin, make_lotad, bucket, tmp_path):
    key = "prestage/p64"
    body = put(origin, bucket, key, data(BIG))
    d = make_lotad(service_credentials=service_creds(tmp_path, origin))
    s3 = origin.s3(endpoint=ep(d))

    r = s3.head_object(Bucket=bucket, Key=key, Range="bytes=0-0")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-prestage"] == "cached"
    assert d.metrics()["cache_fills_committed"] == chunks(BIG)  # committed before the answer

    mark = origin.log_mark()
    got, h = get(s3, bucket, key)
    assert got == body and h["x-lota-cache"] == "hit"
    assert gets(origin, bucket, key, mark) == [(304, 0)]

    # Pre-staging what is cached already says so.
    r = s3.head_object(Bucket=bucket, Key=key, Range="bytes=0-0")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-prestage"] == "cached"
    assert d.metrics()["cache_fills_started"] == chunks(BIG)

    # A plain HEAD does not fill.
    key2 = "prestage/plain"
    put(origin, bucket, key2, data(8 * MiB))
    s3.head_object(Bucket=bucket, Key=key2)
    time.sleep(0.3)
    assert d.metrics()["cache_fills_started"] == chunks(BIG)


def test_prestage_during_a_client_fill_answers_once_committed(origin, make_lotad, bucket,
                                                              tmp_path):
    """A slow client's 200 fills the chunks at the origin's pace, not the client's; a
    pre-staging HEAD meanwhile follows those fills and answers once every chunk is
    committed, while the slow client still reads."""
    key = "prestage/slow"
    body = put(origin, bucket, key, data(2 * BIG))
    d = make_lotad(service_credentials=service_creds(tmp_path, origin))
    mark = origin.log_mark()
    st, _, resp, conn = raw(origin, d, "GET", bucket, key, read=0)
    assert st == 200 and resp.read(MiB) == body[:MiB]  # a slow client
    r = origin.s3(endpoint=ep(d)).head_object(Bucket=bucket, Key=key, Range="bytes=0-0")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-prestage"] == "cached"
    assert d.metrics()["cache_fills_committed"] == chunks(2 * BIG)
    # once: the client's 200 for the first chunk, lotad's fills for the rest (the 200
    # hands off to them: what the origin had in flight when it was closed is extra: at
    # most lotad's receive buffer, 4 MiB once it hands off (fillstream.c), radosgw's send
    # buffer, 4 MiB (tcp_wmem), and radosgw counts a 4 MiB stripe it began whole; with an
    # autotuned receive buffer it was 28 MiB here)
    sent = bodies_sent(origin, bucket, key, mark)
    assert 2 * BIG <= sent <= 2 * BIG + 12 * MiB, \
        (sent, gets(origin, bucket, key, mark))
    rest = resp.read()
    conn.close()
    assert body[:MiB] + rest == body


# -- invalidation ----------------------------------------------------------------------

def warm(s3, bucket, key, body, d=None):
    """Two reads, the second a hit; with d, also until every fill is committed (commits
    run on lotad's commit thread after the client has its bytes, and a write drops only a
    committed entry: a running fill is only kept from committing)."""
    got, _ = get(s3, bucket, key)
    assert got == body
    got, h = get(s3, bucket, key)
    assert got == body and h["x-lota-cache"] == "hit"
    if d:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            m = d.metrics()
            if m["cache_fills_committed"] + m["cache_fills_aborted"] >= m["cache_fills_started"]:
                return
            time.sleep(0.05)
        raise AssertionError("fills not committed:\n" + d.log_tail())


def test_overwrite_through_lotad_and_at_origin(origin, make_lotad, bucket):
    key = "inval/obj"
    v1 = put(origin, bucket, key, data(8 * MiB))
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    warm(s3, bucket, key, v1, d)

    # Through lotad: the write drops the entry before the client sees the 200.
    v2 = data(8 * MiB + 1)
    s3.put_object(Bucket=bucket, Key=key, Body=v2)
    assert d.metrics()["cache_invalidations"] == 1
    mark = origin.log_mark()
    got, h = get(s3, bucket, key)
    assert got == v2 and h.get("x-lota-cache") is None
    assert gets(origin, bucket, key, mark) == [(200, len(v2))]
    warm(s3, bucket, key, v2, d)

    # Directly at the origin: lotad learns it from the origin's 200 to If-None-Match.
    v3 = put(origin, bucket, key, data(8 * MiB + 2))
    got, h = get(s3, bucket, key)
    assert got == v3 and h.get("x-lota-cache") is None
    warm(s3, bucket, key, v3)


def test_copy_multipart_delete_through_lotad_invalidate(origin, make_lotad, bucket):
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    key = "inval/target"
    v1 = put(origin, bucket, key, data(6 * MiB))
    warm(s3, bucket, key, v1, d)

    src = put(origin, bucket, "inval/src", data(5 * MiB + 3))
    s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": "inval/src"})
    assert d.metrics()["cache_invalidations"] == 1
    warm(s3, bucket, key, src, d)

    parts = [data(5 * MiB), data(1 * MiB + 7)]
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    # Uploading parts leaves the object (and its entry) as it was.
    assert d.metrics()["cache_invalidations"] == 1
    got, h = get(s3, bucket, key)
    assert got == src and h["x-lota-cache"] == "hit"
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    assert d.metrics()["cache_invalidations"] == 2
    warm(s3, bucket, key, b"".join(parts), d)

    s3.delete_object(Bucket=bucket, Key=key)
    assert d.metrics()["cache_invalidations"] == 3
    with pytest.raises(ClientError) as e:
        get(s3, bucket, key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# -- Cache-Control and size ------------------------------------------------------------

def test_no_cache_no_store_and_small_objects(origin, make_lotad, bucket):
    key = "cc/obj"
    body = put(origin, bucket, key, data(8 * MiB))
    d = make_lotad()

    # no-cache on a miss: the origin's body, nothing stored.
    st, h, got = raw(origin, d, "GET", bucket, key, {"Cache-Control": "no-cache"})
    assert st == 200 and got == body and "x-lota-cache" not in h
    assert d.metrics()["cache_fills_started"] == 0
    assert cache_files(d) == {}

    # Warm it with a plain GET, then no-cache reads the cache (after the origin's 304).
    st, h, got = raw(origin, d, "GET", bucket, key)
    assert st == 200 and got == body
    mark = origin.log_mark()
    st, h, got = raw(origin, d, "GET", bucket, key, {"Cache-Control": "no-cache"})
    assert st == 200 and got == body and h["x-lota-cache"] == "hit"
    assert gets(origin, bucket, key, mark) == [(304, 0)]

    # no-store bypasses the cache entirely, even when the object is cached.
    mark = origin.log_mark()
    st, h, got = raw(origin, d, "GET", bucket, key, {"Cache-Control": "no-store"})
    assert st == 200 and got == body and "x-lota-cache" not in h
    assert gets(origin, bucket, key, mark) == [(200, len(body))]

    # A 1 MiB object is never cached (min-object-size 4M).
    small = put(origin, bucket, "cc/small", data(1 * MiB))
    mark = origin.log_mark()
    for _ in range(3):
        st, h, got = raw(origin, d, "GET", bucket, "cc/small")
        assert st == 200 and got == small and "x-lota-cache" not in h
    assert gets(origin, bucket, "cc/small", mark) == [(200, MiB)] * 3
    assert d.metrics()["cache_fills_started"] == 1
    assert len(cache_files(d)) == 1


# -- security --------------------------------------------------------------------------

def test_nobody_refused_gets_a_cached_byte(origin, make_lotad):
    tag = uuid.uuid4().hex[:8]
    b = "sec-" + tag
    origin.create_bucket(b)
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    a_key, a_sec = origin.create_user(alice)
    b_key, b_sec = origin.create_user(bob)
    pa = Origin.policy_allow(alice, b)
    pb = Origin.policy_allow(bob, b, prefix="pub/")
    origin.set_bucket_policy(b, {"Version": "2012-10-17",
                                 "Statement": pa["Statement"] + pb["Statement"]})
    secret_body = put(origin, b, "private/obj", data(8 * MiB))
    d = make_lotad()

    a3 = origin.s3(a_key, a_sec, endpoint=ep(d))
    warm(a3, b, "private/obj", secret_body)

    refused = []
    # bob, whom the policy does not allow on private/: whole object and a range.
    refused.append(raw(origin, d, "GET", b, "private/obj", access=b_key, secret=b_sec))
    refused.append(raw(origin, d, "GET", b, "private/obj", {"Range": "bytes=0-99"},
                       access=b_key, secret=b_sec))
    # alice's key with a wrong secret.
    refused.append(raw(origin, d, "GET", b, "private/obj", access=a_key, secret="wrong" + a_sec))
    # an expired presigned URL of alice's.
    url = origin.presign(b, "private/obj", expires=1, client=origin.s3(a_key, a_sec,
                                                                          endpoint=ep(d)))
    time.sleep(2.1)
    refused.append(url_get(url))
    # no credentials at all.
    refused.append(url_get(f"{ep(d)}/{b}/private/obj"))
    hits = d.metrics()["cache_hits"]
    for st, h, body in refused:
        assert_no_cached_byte(st, h, body, secret_body)
    assert d.metrics()["cache_hits"] == hits == 1
    # bob may read pub/, and still the cached object is alice's alone.
    put(origin, b, "pub/x", b"hello")
    assert get(origin.s3(b_key, b_sec, endpoint=ep(d)), b, "pub/x")[0] == b"hello"
    # and alice still hits.
    got, h = get(a3, b, "private/obj")
    assert got == secret_body and h["x-lota-cache"] == "hit"


# -- crashes ---------------------------------------------------------------------------

def test_kill9_mid_fill_then_restart(origin, make_lotad, bucket):
    done_body = put(origin, bucket, "crash/done", data(BIG))
    half_body = put(origin, bucket, "crash/half", data(2 * BIG))
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    assert get(s3, bucket, "crash/done")[0] == done_body
    # Commits run on lotad's commit thread, after the client has its bytes: only a
    # committed chunk is promised to survive a crash: wait for all of the object's.
    wait_metric(d, "cache_fills_committed", chunks(BIG))

    st, _, resp, conn = raw(origin, d, "GET", bucket, "crash/half", read=0)
    assert st == 200
    assert resp.read(4 * MiB) == half_body[:4 * MiB]
    # The fill runs at the origin's pace: freeze the origin so that it is caught mid-way.
    rgw = origin.pids()["radosgw"]
    os.kill(rgw, signal.SIGSTOP)
    try:
        tmp = os.path.join(d.cfg["cache-dir"], "tmp")
        assert os.listdir(tmp), "a fill was expected to be running"
        d.kill9()
    finally:
        os.kill(rgw, signal.SIGCONT)
    conn.close()

    d.start()
    assert not os.listdir(tmp)  # leftovers of the interrupted fill are gone
    mark = origin.log_mark()
    got, h = get(s3, bucket, "crash/done")
    assert got == done_body and h["x-lota-cache"] == "hit"
    assert gets(origin, bucket, "crash/done", mark) == [(304, 0)]
    assert zlib.crc32(got) == zlib.crc32(done_body)

    # Whole chunks of it may have been committed before the kill; the rest is fetched
    # again (no service credentials here: the client's own request, its 200 once).
    mark = origin.log_mark()
    got, h = get(s3, bucket, "crash/half")
    assert got == half_body
    assert [g for g in gets(origin, bucket, "crash/half", mark) if g[0] == 200] == [(200, 2 * BIG)]
    got, h = get(s3, bucket, "crash/half")
    assert h["x-lota-cache"] == "hit" and zlib.crc32(got) == zlib.crc32(half_body)


def test_origin_killed_mid_fill(make_lotad, tmp_path):
    o2 = Origin(tmp_path / "o2").start()
    try:
        b = o2.create_bucket("dying")
        body = put(o2, b, "obj", data(2 * BIG))
        d = make_lotad(origin_url=o2.url)
        st, _, resp, conn = raw(o2, d, "GET", b, "obj", read=0)
        assert st == 200
        assert resp.read(4 * MiB) == body[:4 * MiB]
        os.kill(o2.pids()["radosgw"], 9)
        with pytest.raises((http.client.IncompleteRead, ConnectionError, OSError)):
            resp.read()
        conn.close()
        wait_metric(d, "cache_fills_aborted", 1)
        m = d.metrics()
        assert m["origin_aborts"] >= 1
        # Chunks the origin sent whole may stay; the cut one is nowhere.
        assert len(cache_files(d)) < chunks(2 * BIG)
        assert not os.listdir(os.path.join(d.cfg["cache-dir"], "tmp"))
        # With the origin gone, nothing is served from the cache either.
        st, h, got = raw(o2, d, "GET", b, "obj")
        assert st == 502 and "x-lota-cache" not in h
    finally:
        o2.stop()
    # A fresh origin (radosgw keeps its port in TIME_WAIT, so another address), the same
    # key with other bytes, and lotad restarted on the same cache directory: the new
    # object comes whole from the origin, nothing of the aborted fill is served.
    d.stop()
    o3 = Origin(tmp_path / "o3").start()
    try:
        o3.create_bucket("dying")
        fresh = put(o3, "dying", "obj", data(BIG))
        d3 = make_lotad(origin_url=o3.url, cache_dir=d.cfg["cache-dir"])
        mark = o3.log_mark()
        got, h = get(o3.s3(endpoint=ep(d3)), "dying", "obj")
        assert got == fresh and h.get("x-lota-cache") is None
        assert gets(o3, "dying", "obj", mark) == [(200, BIG)]
    finally:
        o3.stop()


# -- capacity and LRU ------------------------------------------------------------------

def test_lru_under_small_capacity(origin, make_lotad, bucket):
    cap = 256 * MiB
    high = cap * 90 // 100
    n = 16
    bodies = {}
    s3o = origin.s3()
    with ThreadPoolExecutor(4) as ex:  # 1 GiB of uploads: in parallel
        for i, b in enumerate(ex.map(lambda i: put(origin, bucket, f"lru/o{i:02d}", data(BIG)),
                                     range(n))):
            bodies[i] = b
    d = make_lotad(capacity=cap)
    s3 = origin.s3(endpoint=ep(d))

    def read(i):
        mark = origin.log_mark()
        got, h = get(s3, bucket, f"lru/o{i:02d}")
        assert got == bodies[i]
        used = sum(cache_files(d).values())
        assert used <= high, (i, used)
        return h.get("x-lota-cache"), gets(origin, bucket, f"lru/o{i:02d}", mark)

    gauge_max = 0
    for i in range(n - 1):  # 960 MiB of cold reads
        cache, log = read(i)
        assert cache is None and log == [(200, BIG)]
        gauge_max = max(gauge_max, d.metrics()["cache_bytes_used"])
    time.sleep(1.2)  # the control thread refreshes the gauges each second
    m = d.metrics()
    assert max(gauge_max, m["cache_bytes_used"]) <= high
    assert m["cache_capacity_bytes"] == cap
    assert m["cache_evictions"] >= n - 1 - 3
    # Three 64 MiB entries fit under the high watermark: o12, o13, o14. Touch o12, read
    # o15: the least recently used (o13) goes, not the oldest filled (o12).
    cache, log = read(12)
    assert cache == "hit" and log == [(304, 0)]
    cache, log = read(15)
    assert cache is None and log == [(200, BIG)]
    cache, log = read(12)
    assert cache == "hit" and log == [(304, 0)]
    cache, log = read(13)
    assert cache is None and log == [(200, BIG)]
    cache, log = read(0)
    assert cache is None and log == [(200, BIG)]
    for i in range(n):
        s3o.delete_object(Bucket=bucket, Key=f"lru/o{i:02d}")


def test_delete_objects_invalidates_every_key(origin, make_lotad, bucket):
    """DeleteObjects names its keys in its body: lotad keeps a copy of it and drops each
    key once the origin says 200."""
    d = make_lotad()
    s3 = origin.s3(endpoint=ep(d))
    keys = ["multi/a.bin", "multi/b & c.bin"]
    for k in keys:
        put(origin, bucket, k, data(BIG))
        get(s3, bucket, k)
        get(s3, bucket, k)  # the second read is a hit: the entry exists
    wait_metric(d, "cache_fills_committed", len(keys) * chunks(BIG))
    entries, inval = d.metrics()["cache_entries"], d.metrics()["cache_invalidations"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(o["Key"] for o in r["Deleted"]) == sorted(keys)
    m = d.metrics()
    assert m["cache_invalidations"] == inval + len(keys), m
    assert m["cache_entries"] == entries - len(keys) * chunks(BIG), m
    assert "DeleteObjects on" in d.log_text()


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB filesystem of the test's own (tmpfs), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "lota-test", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("splice", ["on", "off"])
def test_full_disk_abandons_the_fill_not_the_client(origin, make_lotad, bucket, small_disk,
                                                    splice):
    """The cache's filesystem fills up mid-fill (capacity says there is room; the disk
    does not): the fill is abandoned, the client still gets every byte from the origin
    stream, nothing partial is kept, and a later object that fits is cached."""
    d = make_lotad(cache_dir=str(small_disk / "cache"), capacity="1G", splice=splice)
    s3 = origin.s3(endpoint=ep(d))
    big_body = put(origin, bucket, f"disk/big-{splice}", data(40 * MiB))
    aborted = d.metrics()["cache_fills_aborted"]
    got, h = get(s3, bucket, f"disk/big-{splice}")
    assert got == big_body
    wait_metric(d, "cache_fills_aborted", aborted + 1)
    assert "abandoned" in d.log_text() and "No space left" in d.log_text()
    assert not os.listdir(small_disk / "cache" / "tmp")
    assert d.metrics()["cache_entries"] <= 1  # a chunk that fit stays: it is whole
    # an object that fits in the space left is cached and hit
    small_body = put(origin, bucket, f"disk/fits-{splice}", data(4 * MiB))
    committed = d.metrics()["cache_fills_committed"]
    get(s3, bucket, f"disk/fits-{splice}")
    wait_metric(d, "cache_fills_committed", committed + 1)
    got, h = get(s3, bucket, f"disk/fits-{splice}")
    assert got == small_body and h["x-lota-cache"] == "hit"


@pytest.mark.parametrize("conns", [2, 8, 13])
def test_connections_are_spread_evenly_over_the_workers(make_lotad, conns):
    """The kernel spreads connections over the workers' listeners by a hash of their
    addresses, which often leaves one worker with most of a few busy connections while a
    core idles: lotad hands each accepted connection to the worker with the fewest, so
    the workers' counts never differ by more than one."""
    d = make_lotad(workers="4")
    socks = []
    try:
        for i in range(conns):
            s = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            s.request("GET", f"/no-such-bucket-{i}/k", headers={"Host": "cwlota.com"})
            r = s.getresponse()
            r.read()
            assert r.status in (403, 404) and not r.will_close
            socks.append(s)
        m = d.metrics()
        counts = [int(m[f'worker_connections{{worker="{w}"}}']) for w in range(4)]
        assert sum(counts) == conns and max(counts) - min(counts) <= 1, counts
        assert m["connections_handed_off"] >= 0
    finally:
        for s in socks:
            s.close()
    wait = time.monotonic() + 10
    while time.monotonic() < wait and sum(
            int(v) for k, v in d.metrics().items() if k.startswith("worker_connections")):
        time.sleep(0.05)
    m = d.metrics()
    assert all(int(m[f'worker_connections{{worker="{w}"}}']) == 0 for w in range(4)), m


def test_a_new_client_connection_reuses_an_idle_origin_connection(origin, make_lotad):
    """Clients that open a connection per request (curl, one aws cli process per copy) no
    longer cost a new origin connection each: a client connection that closes leaves its
    idle origin connection to the worker's pool, and the next client's request goes on
    it. Five clients one after another, each with its own connection and signature, make
    one origin connection (counted by a relay in front of the origin)."""
    b = "pool-" + uuid.uuid4().hex[:8]
    s3 = origin.s3()
    s3.create_bucket(Bucket=b)
    body = os.urandom(64 * 1024)
    s3.put_object(Bucket=b, Key="small", Body=body)  # below min-object-size: relayed
    with Relay(("127.0.0.1", 0), ("127.0.0.1", origin.port)) as r:
        d = make_lotad(origin_url=r.url, workers="1")
        for _ in range(5):
            via = origin.s3(endpoint=f"http://cwlota.com:{d.port}")
            assert via.get_object(Bucket=b, Key="small")["Body"].read() == body
            via.close()
        assert r.accepted == 1, r.accepted
        assert d.metrics()["origin_connections_reused"] >= 4
