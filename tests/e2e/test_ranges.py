"""A ranged read gets the same answer from lotad whether the object is cached or not. For a
broad table of Range header values, odd forms included, the origin's own answer, lotad's
cold answer (nothing cached: the request is relayed) and its warm answer (the object
committed in lotad's cache) agree in status, Content-Range, Content-Length and bytes; so do
the answers given while a fill is still running (x-lota-cache: follow). Error bodies carry
request ids: of those only the S3 error Code is compared.

The requests go out three ways: SigV4-signed headers with the Range header added unsigned
(every byte of the value reaches the server as written), presigned URLs with a raw Range
header, and boto3's get_object(Range=...), which signs it.

Which warm answers must come from the cache: the forms user/lib/range.h serves locally
(`bytes=N-M`, `bytes=N-`, `bytes=-N` with plain numbers) always do (x-lota-cache and a 304
in the origin's log). Every other form is lotad's to relay to the origin; until the
object-read path asks range_is_served_locally() before adding If-None-Match, the hit path
answers those itself, exactly as the origin would. Either way the answer must be the
origin's; a form the origin rejects even when asked to confirm an ETag (it answers 416
before evaluating If-None-Match) is always the origin's own answer."""

import hashlib
import http.client
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections import namedtuple

import pytest
from botocore.exceptions import ClientError

from relay import Relay

MiB = 1024 * 1024
S = 5 * MiB + 3  # above lotad's 4 MiB min-object-size: cached
INT64_MAX = (1 << 63) - 1

# Each row is the list of Range header values one request carries (usually one).
ROWS = [[v] for v in (
    # single ranges
    "bytes=0-0", "bytes=0-1", "bytes=1-1", f"bytes={S - 1}-{S - 1}", "bytes=0-999",
    f"bytes=0-{S - 2}", f"bytes=0-{S - 1}", f"bytes=0-{S}", f"bytes=5-{S + 100}",
    f"bytes={S}-{S}", f"bytes={S}-{S + 10}", f"bytes={S + 1}-{S + 5}", "bytes=5-2",
    "bytes=1-0", f"bytes={S}-1",
    # open-ended
    "bytes=0-", "bytes=10-", f"bytes={S - 1}-", f"bytes={S}-", f"bytes={S + 1}-",
    # suffix
    "bytes=-0", "bytes=-1", "bytes=-4321", f"bytes=-{S - 1}", f"bytes=-{S}",
    f"bytes=-{S + 1}", "bytes=-",
    # several ranges
    "bytes=0-1,5-6", "bytes=0-1,2-3,4-5,6-7", "bytes=0-10,5-15", f"bytes={S}-,0-1",
    "bytes=0-1, 5-6", "bytes=-5,-6", "bytes=5-6,0-1",
    # white space in every position (lotad and the origin trim it around the value)
    "bytes= 0-1", "bytes=0 -1", "bytes=0- 1", "bytes =0-1", "bytes=0-1 ", " bytes=0-1",
    "bytes=\t0-1", "bytes=0-\t1", "bytes\t=0-1", "Bytes =0-1", "bytes=- 5", "bytes= -5",
    # case
    "Bytes=0-1", "BYTES=0-1", "byTes=0-1",
    # other units, no unit, broken units
    "items=0-1", "bytesx=0-1", "xbytes=0-1", "b=0-1", "=0-1", "0-1", "bytes:0-1",
    "bytes==0-1", "bytes=items=0-1", "items=0-1;bytes=5-6",
    # empty and broken specs
    "", "bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5", "bytes=--1", "bytes=0--0",
    "bytes=1-1-1", "bytes=5-6-", "bytes=0x10-0x20", "bytes=1e3-2e3", "bytes=\x80-1",
    # leading zeros, plus signs
    "bytes=0007-0009", "bytes=-0005", "bytes=000-", "bytes=+1-+2", "bytes=+1-2",
    "bytes=1-+2", "bytes=-+5",
    # huge numbers
    "bytes=0-18446744073709551615", "bytes=0-18446744073709551616",
    "bytes=0-99999999999999999999999999", "bytes=18446744073709551616-",
    "bytes=-18446744073709551616", f"bytes=0-{INT64_MAX}", f"bytes=0-{INT64_MAX + 1}",
    f"bytes={INT64_MAX}-", f"bytes=-{INT64_MAX}", f"bytes=-{INT64_MAX + 1}",
    f"bytes=0--{INT64_MAX + 2}",
    # commas
    "bytes=,", "bytes=,,", "bytes=0-1,", "bytes=,0-1", ",",
)] + [
    # the same header twice
    ["bytes=0-1", "bytes=5-6"], ["bytes=5-6", "items=0-1"], ["bytes=0-1", "bytes=5-2"],
]

# Presigned URLs with a raw Range header, and boto3's signed Range header.
PRESIGNED_ROWS = [[v] for v in (
    "bytes=0-1", "bytes=-1", "bytes=3-", "bytes=0-1,5-6", "bytes= 0-1", "bytes=-0",
    "Bytes=0-1", "items=0-1", "bytes=a-b", f"bytes={S}-", "bytes=5-2", "",
)]
BOTO3_ROWS = [[v] for v in (
    "bytes=0-1", f"bytes={S - 10}-", "bytes=-10", "bytes=0-1,5-6", "bytes=0 -1",
    "bytes =0-1", "bytes=-0", "BYTES=0-1", "items=0-1", "bytes=", f"bytes={S}-",
    "bytes=0-\t1",
)]

ALL_ROWS = [("hdr", r) for r in ROWS] + [("presigned", r) for r in PRESIGNED_ROWS] + \
    [("boto3", r) for r in BOTO3_ROWS]

Answer = namedtuple("Answer", "status content_range content_length body code xcache")


def served_locally(values, size):
    """The rule of user/lib/range.h, range_is_served_locally(), for an object of size bytes: one
    Range header, after the white space HTTP trims, `bytes=N-M` (N <= M), `bytes=N-`
    (N < size) or `bytes=-N` (N >= 1), with plain numbers up to 2^63-1."""
    if len(values) != 1:
        return False
    m = re.fullmatch(r"bytes=([0-9]*)-([0-9]*)", values[0].strip(" \t"))
    if not m or not (m.group(1) or m.group(2)):
        return False
    first = int(m.group(1)) if m.group(1) else None
    last = int(m.group(2)) if m.group(2) else None
    if max(first or 0, last or 0) > INT64_MAX:
        return False
    if first is None:
        return last >= 1
    return first < size and (last is None or first <= last)


# -- talking to a server ---------------------------------------------------------------

class Target:
    """The origin or a lotad, as a client addresses it (path-style)."""

    def __init__(self, origin, endpoint):
        self.origin = origin
        self.endpoint = endpoint
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.netloc, u.port
        self.s3 = origin.s3(endpoint=endpoint)


def answer_of(status, headers, body, xml=None):
    code = None
    if not 200 <= status < 300:
        m = re.search(rb"<Code>([^<]*)</Code>", body or b"")
        code = m.group(1).decode() if m else xml
        body = None
    return Answer(status, headers.get("content-range"), headers.get("content-length"), body,
                  code, headers.get("x-lota-cache"))


def send_raw(t, path, headers, values, inm=None):
    """Sends a GET with these headers, then each Range value as its own raw header line.
    Returns the open response (head read, body not)."""
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=120)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    for v in values:
        conn.putheader("Range", v.encode("latin-1"))
    if inm:
        conn.putheader("If-None-Match", inm)
    conn.endheaders()
    return conn, conn.getresponse()


def open_request(t, bucket, key, how, values, inm=None):
    if how == "hdr":
        url, h = t.origin.signed_headers("GET", bucket, key, endpoint=t.endpoint)
        h["Host"] = t.host
    else:
        url, h = t.origin.presign(bucket, key, client=t.s3), {"Host": t.host}
    return send_raw(t, url[len(t.endpoint):], h, values, inm)


def fetch(t, bucket, key, how, values, inm=None):
    """The answer of one GET of bucket/key with these Range headers."""
    if how == "boto3":
        return fetch_boto3(t, bucket, key, values[0], inm)
    conn, r = open_request(t, bucket, key, how, values, inm)
    headers = {k.lower(): v for k, v in r.getheaders()}
    body = r.read()
    conn.close()
    return answer_of(r.status, headers, body)


def fetch_boto3(t, bucket, key, rng, inm=None):
    kw = {"IfNoneMatch": inm} if inm else {}
    try:
        r = t.s3.get_object(Bucket=bucket, Key=key, Range=rng, **kw)
    except ClientError as e:
        meta = e.response["ResponseMetadata"]
        return answer_of(meta["HTTPStatusCode"], meta["HTTPHeaders"], None,
                         e.response["Error"]["Code"])
    meta = r["ResponseMetadata"]
    return answer_of(meta["HTTPStatusCode"], meta["HTTPHeaders"], r["Body"].read())


def same(want, got):
    if want.status != got.status or want.content_range != got.content_range:
        return False
    if 200 <= want.status < 300:
        return want.content_length == got.content_length and want.body == got.body
    return want.code == got.code


def show(a):
    if a is None:
        return "-"
    what = f"{len(a.body)} B sha {hashlib.sha256(a.body).hexdigest()[:8]}" \
        if a.body is not None else a.code
    return f"{a.status} CR={a.content_range} CL={a.content_length} {what} cache={a.xcache}"


def check_body(body, a, row):
    """The origin's own 2xx answers are byte-identical to what was uploaded."""
    if a.status == 206:
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", a.content_range)
        assert m and int(m.group(3)) == len(body), (row, a.content_range)
        assert a.body == body[int(m.group(1)):int(m.group(2)) + 1], row
    elif a.status == 200:
        assert a.body == body, row


def started(req):
    """When radosgw began req, as its beast line says ([dd/Mon/yyyy:HH:MM:SS.mmm +0000]):
    a key that sorts lines of one day in the order their requests began."""
    m = re.search(r"\[[^:\]]*:([^ \]]+)", req.line)
    return m.group(1) if m else ""


def route_problem(values, inm_answer, got, logged):
    """Why this warm answer did not take the route it must, or None. logged: the origin's
    log line for the request (a 304 means lotad served its cached copy)."""
    hit = got.xcache in ("hit", "follow") and logged.status == 304 and logged.bytes == 0
    relayed = got.xcache is None and logged.status == got.status
    if inm_answer.status != 304:
        return None if relayed else "the origin's own answer was expected"
    if served_locally(values, S):
        return None if hit else "not served from the cache"
    return None if hit or relayed else "neither served from the cache nor relayed"


@pytest.fixture(scope="module")
def bucket(origin):
    name = "ranges-" + uuid.uuid4().hex[:12]
    origin.create_bucket(name)
    yield name
    s3 = origin.s3()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def wait_committed(d, n, timeout=30):

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.metrics().get("cache_fills_committed", 0) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no commit: {d.metrics()}\n{d.log_tail()}")


# -- the table -------------------------------------------------------------------------

def test_every_range_gets_the_origins_answer_cold_and_warm(origin, make_lotad, bucket):
    key = "obj"
    body = os.urandom(S)
    s3 = origin.s3()
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]
    o = Target(origin, origin.url)
    d = make_lotad()  # no service credentials: a cold ranged read fills nothing
    lt = Target(origin, f"http://cwlota.com:{d.port}")

    direct = [fetch(o, bucket, key, how, v) for how, v in ALL_ROWS]
    for (how, v), a in zip(ALL_ROWS, direct):
        check_body(body, a, (how, v))
    # Does the origin answer this form itself even when asked to confirm our ETag?
    inm = [fetch(o, bucket, key, how, v, inm=etag) for how, v in ALL_ROWS]

    # Cold: nothing of key is cached while the rows the origin answers with a part or an
    # error go through; a whole-object answer fills the cache, so each of those reads a
    # fresh copy of its own.
    cold = [None] * len(ALL_ROWS)
    for i, ((how, v), a) in enumerate(zip(ALL_ROWS, direct)):
        if a.status != 200:
            cold[i] = fetch(lt, bucket, key, how, v)
    assert d.metrics()["cache_fills_started"] == 0
    for i, ((how, v), a) in enumerate(zip(ALL_ROWS, direct)):
        if a.status == 200:
            copy = f"whole/{i}"
            s3.put_object(Bucket=bucket, Key=copy, Body=body)
            cold[i] = fetch(lt, bucket, copy, how, v)

    # Warm: the object committed in lotad's cache.
    got = fetch(lt, bucket, key, "hdr", [])
    assert got.status == 200 and got.body == body
    wait_committed(d, d.metrics()["cache_fills_started"])
    assert fetch(lt, bucket, key, "hdr", []).xcache == "hit"
    hits0 = d.metrics()["cache_hits"]
    mark = origin.log_mark()
    warm = [fetch(lt, bucket, key, how, v) for how, v in ALL_ROWS]
    # In the order the requests began (the log has them in the order they ended: a long
    # relayed body may end after the short request the client sent next).
    logged = sorted(origin.log_requests(mark, "GET", f"/{bucket}/{key}"), key=started)
    assert len(logged) == len(ALL_ROWS), [r.line for r in logged[-5:]]

    failures = []
    for i, (how, v) in enumerate(ALL_ROWS):
        for what, a in (("cold", cold[i]), ("warm", warm[i])):
            if not same(direct[i], a):
                failures.append(f"{how} {v!r} {what}: origin {show(direct[i])} | lotad {show(a)}")
        why = route_problem(v, inm[i], warm[i], logged[i])
        if why:
            failures.append(f"{how} {v!r} warm: {why}: {show(warm[i])}, origin logged "
                            f"{logged[i].status} {logged[i].bytes} B")
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures)
    local = sum(1 for (how, v), a in zip(ALL_ROWS, inm) if a.status == 304 and served_locally(v, S))
    assert d.metrics()["cache_hits"] - hits0 >= local


# -- while the fill runs ---------------------------------------------------------------

FOLLOW_ROWS = [[v] for v in (
    "bytes=0-0", "bytes=100-199", "bytes=-1", "bytes=1000-", "bytes=-0", "bytes=0-1,5-6",
    "bytes= 0-1", "items=0-1", f"bytes={64 * MiB}-", "bytes=a-b",
)]


def test_ranges_served_while_the_fill_runs(origin, make_lotad, bucket, request):
    key = "follow"
    n = 64 * MiB
    body = os.urandom(n)
    origin.s3().put_object(Bucket=bucket, Key=key, Body=body)
    o = Target(origin, origin.url)
    direct = [fetch(o, bucket, key, "hdr", v) for v in FOLLOW_ROWS]
    # The fill runs at the origin's pace, not the client's: an origin 8 MiB/s away keeps
    # it running (8 s for the object) while the ranges come.
    slow = Relay(("127.0.0.1", 0), ("127.0.0.1", origin.port), rate=8 * MiB).start()
    request.addfinalizer(slow.stop)
    d = make_lotad(origin_url=slow.url)
    lt = Target(origin, f"http://cwlota.com:{d.port}")

    # A client's whole-object read: its 200 is adopted and cut into chunks.
    conn0, r0 = open_request(lt, bucket, key, "hdr", [])
    assert r0.status == 200 and r0.read(MiB) == body[:MiB]
    answers = [None] * len(FOLLOW_ROWS)
    threads = []

    def finish(i, conn, r, headers):
        answers[i] = answer_of(r.status, headers, r.read())
        conn.close()

    for i, v in enumerate(FOLLOW_ROWS):
        conn, r = open_request(lt, bucket, key, "hdr", v)
        headers = {k.lower(): v for k, v in r.getheaders()}
        t = threading.Thread(target=finish, args=(i, conn, r, headers))
        t.start()
        threads.append(t)
    rest = r0.read()
    conn0.close()
    for t in threads:
        t.join(120)
    assert body[:MiB] + rest == body
    failures = []
    for v, want, got in zip(FOLLOW_ROWS, direct, answers):
        if not same(want, got):
            failures.append(f"{v!r}: origin {show(want)} | lotad {show(got)}")
        elif served_locally(v, n) and got.xcache not in ("follow", "hit"):
            # "hit": its chunk was committed already, the rest of the object still filling
            failures.append(f"{v!r}: not served from the running fill: {show(got)}")
    assert not failures, "\n".join(failures)
    assert d.metrics()["cache_coalesced"] >= sum(1 for v in FOLLOW_ROWS if served_locally(v, n))
