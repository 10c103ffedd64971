"""SSE-C objects cached sealed, served only to a reader who presents the key (issue 14),
against the real radosgw with real clients (boto3 SSECustomerKey, curl --aws-sigv4).

- PUT with K through lotad; GET with K twice: the second is a hit (the origin's log shows
  a 304 and no body), bytes exact.
- With a copy cached: no key, a wrong key, K's MD5 with another key, and a user the policy
  denies each get exactly the origin's answer (status and S3 error code, measured against
  radosgw directly), never a cached byte.
- The cache directory holds no plaintext and no K, MD5(K) or SHA-256(K) in any form.
- Ranged reads, cold and warm, byte-exact, with the origin's status and Content-Range.
- Spellings and algorithms lotad does not take are relayed untouched and never cached.
- With service credentials (a user of lotad's own, s3:GetObject by policy, and 1 MiB
  chunks): cold ranged reads are served from chunks lotad fills with the reader's key
  (the client's own request gets a 304), warm ones are hits; a wrong key, or a reader the
  policy denies, gets the origin's answer and nothing is cached; a chunk gone from the
  disk is filled again; a HEAD with Range: bytes=0-0 and the key pre-stages the object,
  and `lotactl prestage --sse-c-key-file` does the same for a prefix."""

import base64
import hashlib
import os
import re
import subprocess
import time
import uuid

import pytest

from lotad import BUILD
from origin import Origin

MiB = 1024 * 1024
SSEC = "x-amz-server-side-encryption-customer-"
CHUNK = 16 * MiB
SIZE = CHUNK + 5 * MiB + 12345  # two chunks, the last one short
PATTERN = b"LOTA-SSEC-PLAINTEXT-"


def plaintext(n):
    """A known pattern, different at every offset (line numbers), for greps and ranges."""
    lines = b"".join(PATTERN + b"%012d\n" % i for i in range(n // 33 + 1))
    return lines[:n]


def key_headers(key, md5_of=None, spell=lambda n: n, algorithm="AES256"):
    md5 = hashlib.md5(md5_of if md5_of is not None else key).digest()
    return {spell(SSEC + "algorithm"): algorithm,
            spell(SSEC + "key"): base64.b64encode(key).decode(),
            spell(SSEC + "key-md5"): base64.b64encode(md5).decode()}


def raw_get(origin, endpoint, bucket, key, who=None, extra=None):
    """One GET signed by who (access, secret), extra headers added unsigned; returns
    (status, headers, body) as the server sent them."""
    import urllib.request
    access, secret = who or (None, None)
    url, h = origin.signed_headers("GET", bucket, key, access=access, secret=secret,
                                   endpoint=endpoint)
    h.update(extra or {})
    req = urllib.request.Request(url, headers=h, method="GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def wait_committed(d, n, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.metrics().get("cache_fills_committed", 0) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("no commit:\n" + d.log_tail())


def cache_files(d):
    top = d.cfg["cache-dir"]
    return [os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs]


def chunk_files(d):
    return [p for p in cache_files(d) if "/objects/" in p]


@pytest.fixture(scope="module")
def tag():
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def users(origin, tag):
    """A bucket with alice (everything, by policy), bob (GetObject on pub/ only) and
    lotad's service user (GetObject on everything)."""
    b = "ssec-" + tag
    origin.create_bucket(b)
    alice, bob, svc = f"alice-{tag}", f"bob-{tag}", f"ssecsvc-{tag}"
    a = origin.create_user(alice)
    bb = origin.create_user(bob)
    origin.create_user(svc)
    pol = Origin.policy_allow(alice, b, actions=("s3:*",))
    pol["Statement"] += Origin.policy_allow(bob, b, prefix="pub/")["Statement"]
    pol["Statement"] += Origin.policy_allow(svc, b)["Statement"]
    origin.set_bucket_policy(b, pol)
    return b, a, bb


def cached_object(origin, make_lotad, users, size=SIZE, **cfg):
    """An SSE-C object PUT through lotad with boto3, read once with K (cold, relayed and
    sealed) and committed: (lotad, bucket, key, K, plaintext)."""
    b, alice, _ = users
    d = make_lotad(**cfg)
    k, key, body = "ssec/" + uuid.uuid4().hex, os.urandom(32), plaintext(size)
    s3 = origin.s3(*alice, endpoint=d.url)
    s3.put_object(Bucket=b, Key=k, Body=body, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    got = s3.get_object(Bucket=b, Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == body
    wait_committed(d, (size + CHUNK - 1) // CHUNK)
    return d, b, k, key, body


def test_get_with_the_key_twice_second_is_a_hit(origin, make_lotad, users):
    d, b, k, key, body = cached_object(origin, make_lotad, users)
    _, alice, _ = users
    s3 = origin.s3(*alice, endpoint=d.url)
    mark = origin.log_mark()
    got = s3.get_object(Bucket=b, Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == body
    h = got["ResponseMetadata"]["HTTPHeaders"]
    assert h["x-lota-cache"] == "hit"
    assert h[SSEC + "algorithm"] == "AES256"
    assert h[SSEC + "key-md5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
    reqs = origin.log_requests(mark, "GET")
    assert [r.status for r in reqs] == [304], reqs
    # And with curl, a third time: a hit again, byte-exact.
    # And with curl (a presigned URL; curl 7.88's --aws-sigv4 mis-signs these headers even
    # against radosgw directly), a third time: a hit again, byte-exact.
    url = origin.presign(b, k, client=origin.s3(*alice, endpoint=d.url))
    hdrs = [x for n, v in key_headers(key).items() for x in ("-H", f"{n}: {v}")]
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *hdrs, "-o", "-", url],
                         capture_output=True, check=True).stdout
    assert out == body
    assert [r.status for r in origin.log_requests(mark, "GET")] == [304, 304]


def denials(key, bob):
    other = os.urandom(32)
    return {
        "no key": (None, {}),
        "wrong key": (None, key_headers(other)),
        "K's MD5 with another key": (None, key_headers(other, md5_of=key)),
        "denied by policy, with K": (bob, key_headers(key)),
    }


def test_denied_readers_get_the_origins_answer(origin, make_lotad, users):
    d, b, k, key, body = cached_object(origin, make_lotad, users)
    _, alice, bob = users
    assert raw_get(origin, d.url, b, k, alice, key_headers(key))[1]["x-lota-cache"] == "hit"
    for why, (who, extra) in denials(key, bob).items():
        who = who or alice
        st, h, got = raw_get(origin, d.url, b, k, who, extra)
        ost, oh, ogot = raw_get(origin, origin.url, b, k, who, extra)
        assert (st, error_code(got)) == (ost, error_code(ogot)), (why, st, got[:300], ogot[:300])
        assert st >= 400 and PATTERN not in got and "x-lota-cache" not in h, why
    # The copy is still there for the reader with the key.
    st, h, got = raw_get(origin, d.url, b, k, alice, key_headers(key))
    assert st == 200 and got == body and h["x-lota-cache"] == "hit"


def test_cache_holds_no_plaintext_and_no_key(origin, make_lotad, users):
    d, b, k, key, body = cached_object(origin, make_lotad, users)
    files = chunk_files(d)
    assert len(files) == 2, files  # both chunks are cached, sealed
    r = subprocess.run(["grep", "-r", "-l", "-a", PATTERN.decode(), d.cfg["cache-dir"]],
                       capture_output=True)
    assert r.returncode == 1 and r.stdout == b"", r.stdout
    forms = []
    for digest in (key, hashlib.md5(key).digest(), hashlib.sha256(key).digest()):
        forms += [digest, digest.hex().encode(), digest.hex().upper().encode(),
                  base64.b64encode(digest), base64.b64encode(digest).rstrip(b"=")]
    for p in cache_files(d):
        data = open(p, "rb").read()
        for f in forms:
            assert f not in data, (p, f)
    # What a chunk keeps of the key is a keyed hash of it, in every chunk's header.
    markers = [re.search(rb"x-lota-ssec: 1 ([0-9a-f]{64}) ([0-9a-f]{32})", open(p, "rb").read())
               for p in files]
    assert all(markers)
    assert len({m.group(1) for m in markers}) == 1 and len({m.group(2) for m in markers}) == 2


def range_slice(rng):
    a, b = rng[len("bytes="):].split("-")
    if a == "":
        return SIZE - int(b), SIZE
    return int(a), (int(b) + 1 if b else SIZE)


RANGES = ["bytes=0-0", "bytes=100-200", f"bytes={CHUNK - 10}-{CHUNK + 10}",
          f"bytes={SIZE - 50}-", "bytes=-4096", f"bytes={CHUNK}-{SIZE - 1}", "bytes=5-"]


def test_ranged_reads_cold_and_warm(origin, make_lotad, users):
    b, alice, _ = users
    d = make_lotad()
    k, key, body = "ssec/" + uuid.uuid4().hex, os.urandom(32), plaintext(SIZE)
    origin.s3(*alice).put_object(Bucket=b, Key=k, Body=body, SSECustomerAlgorithm="AES256",
                                 SSECustomerKey=key)

    def through_lotad():
        return {rng: raw_get(origin, d.url, b, k, alice, dict(key_headers(key), Range=rng))
                for rng in RANGES}

    def compare(got, label):
        for rng, (st, h, data) in got.items():
            ost, oh, odata = raw_get(origin, origin.url, b, k, alice,
                                     dict(key_headers(key), Range=rng))
            assert (st, h.get("content-range")) == (ost, oh.get("content-range")), (rng, label)
            assert data == odata == body[slice(*range_slice(rng))], (rng, label)

    cold = through_lotad()
    compare(cold, "cold")
    assert all(h.get("x-lota-cache") != "hit" for _, h, _ in cold.values())
    assert chunk_files(d) == []  # no service credentials: cold ranged reads are relayed
    s3 = origin.s3(*alice, endpoint=d.url)
    s3.get_object(Bucket=b, Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=key)["Body"].read()
    wait_committed(d, 2)
    mark = origin.log_mark()
    warm = through_lotad()
    # Every warm read got a 304 from the origin: no body left it.
    assert [r.status for r in origin.log_requests(mark, "GET")] == [304] * len(RANGES)
    assert all(h.get("x-lota-cache") == "hit" for _, h, _ in warm.values())
    compare(warm, "warm")
    got = s3.get_object(Bucket=b, Key=k, Range=f"bytes={CHUNK - 3}-{CHUNK + 2}",
                        SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert got["Body"].read() == body[CHUNK - 3:CHUNK + 3]
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-lota-cache"] == "hit"


@pytest.mark.parametrize("variant", ["underscores", "lowercase-algorithm", "AES128"])
def test_other_spellings_and_algorithms_are_relayed_untouched(origin, make_lotad, users,
                                                              variant):
    d, b, k, key, body = cached_object(origin, make_lotad, users, size=5 * MiB)
    _, alice, _ = users
    extra = {
        "underscores": key_headers(key, spell=lambda n: n.replace("-", "_")),
        "lowercase-algorithm": key_headers(key, algorithm="aes256"),
        "AES128": key_headers(key, algorithm="AES128"),
    }[variant]
    before = d.metrics()["cache_fills_started"]
    mark = origin.log_mark()
    st, h, got = raw_get(origin, d.url, b, k, alice, extra)
    ost, oh, ogot = raw_get(origin, origin.url, b, k, alice, extra)
    assert (st, error_code(got)) == (ost, error_code(ogot))
    assert "x-lota-cache" not in h
    assert got == ogot if st == 200 else error_code(got) and PATTERN not in got
    # The origin answered lotad's request itself (no 304 of ours), and nothing new is cached.
    assert 304 not in [r.status for r in origin.log_requests(mark, "GET")]
    assert d.metrics()["cache_fills_started"] == before


def test_hits_survive_a_restart_and_a_new_node_secret_reseals(origin, make_lotad, users):
    """The node's secret is kept beside the chunks, so a restart keeps the hits; with a new
    secret the stored verifiers no longer match: every read goes to the origin, and its
    200 seals the object again under the new one."""
    d, b, k, key, body = cached_object(origin, make_lotad, users)
    _, alice, _ = users
    d.stop()
    d.start()
    st, h, got = raw_get(origin, d.url, b, k, alice, key_headers(key))
    assert st == 200 and got == body and h.get("x-lota-cache") == "hit"
    d.stop()
    os.unlink(os.path.join(d.cfg["cache-dir"], "ssec.secret"))
    d.start()
    st, h, got = raw_get(origin, d.url, b, k, alice, key_headers(key))
    assert st == 200 and got == body and h.get("x-lota-cache") != "hit"
    wait_committed(d, 2)
    st, h, got = raw_get(origin, d.url, b, k, alice, key_headers(key))
    assert st == 200 and got == body and h.get("x-lota-cache") == "hit"


# -- fills with the reader's key (service credentials) ---------------------------------

FCHUNK = MiB
FSIZE = 5 * MiB + 12345  # six 1 MiB chunks, the last one short
FCHUNKS = 6


@pytest.fixture
def svc_lotad(make_lotad, tmp_path, tag):
    """make(**config) -> a lotad with the service user's credentials and 1 MiB chunks."""
    creds = tmp_path / "service-credentials"
    creds.write_text(f"[default]\naws_access_key_id = ssecsvc-{tag}-access\n"
                     f"aws_secret_access_key = ssecsvc-{tag}-secret\n")

    def make(**cfg):
        cfg.setdefault("service_credentials", str(creds))
        cfg.setdefault("chunk_size", "1M")
        cfg.setdefault("min_object_size", "1M")
        return make_lotad(**cfg)

    return make


def put_ssec(origin, users, size):
    """An SSE-C object PUT at the origin itself: (bucket, key, K, plaintext)."""
    b, alice, _ = users
    k, key, body = "ssec/" + uuid.uuid4().hex, os.urandom(32), plaintext(size)
    origin.s3(*alice).put_object(Bucket=b, Key=k, Body=body, SSECustomerAlgorithm="AES256",
                                 SSECustomerKey=key)
    return b, k, key, body


def slice_of(rng, size):
    a, b = rng[len("bytes="):].split("-")
    if a == "":
        return size - int(b), size
    return int(a), (int(b) + 1 if b else size)


def origin_gets(origin, mark, b, k):
    """(user, status, bytes) of every GET of b/k the origin logged since mark."""
    return [(r.user, r.status, r.bytes) for r in origin.log_requests(mark, "GET", f"/{b}/{k}")]


def assert_no_plaintext(d):
    r = subprocess.run(["grep", "-r", "-l", "-a", PATTERN.decode(), d.cfg["cache-dir"]],
                       capture_output=True)
    assert r.returncode == 1 and r.stdout == b"", r.stdout


# The first byte of a chunk, the last of the next, the first of the one after, a range over
# a boundary, one over four chunks, a suffix: each of them, cold, needs a chunk no range
# before it needed (so that each is a "miss", whatever the commit thread did meanwhile).
FRANGES = ["bytes=0-0", f"bytes={2 * FCHUNK - 1}-{2 * FCHUNK - 1}",
           f"bytes={2 * FCHUNK}-{2 * FCHUNK}", f"bytes={3 * FCHUNK - 10}-{3 * FCHUNK + 10}",
           f"bytes={FCHUNK + 100}-{4 * FCHUNK + 200}", "bytes=-4096"]


def test_cold_ranged_reads_are_filled_with_the_readers_key(origin, svc_lotad, users, tag):
    """A ranged read of an SSE-C object not cached yet: lotad's HEAD with the key learns
    the version, the client's own request gets a 304, and the range is served from chunks
    lotad fills with the key (206s to the service user). Again: hits, 304s only."""
    _, alice, _ = users
    d = svc_lotad()
    b, k, key, body = put_ssec(origin, users, FSIZE)
    svc, client = f"ssecsvc-{tag}", f"alice-{tag}"

    def read_all(label):
        mark = origin.log_mark()
        for rng in FRANGES:
            st, h, data = raw_get(origin, d.url, b, k, alice, dict(key_headers(key), Range=rng))
            ost, oh, odata = raw_get(origin, origin.url, b, k, alice,
                                     dict(key_headers(key), Range=rng))
            assert (st, h.get("content-range")) == (ost, oh.get("content-range")), (rng, label)
            assert data == odata == body[slice(*slice_of(rng, FSIZE))], (rng, label)
            assert h.get("x-lota-cache") == label, (rng, h)
            assert h[SSEC + "key-md5"] == oh[SSEC + "key-md5"]
        # lotad's reads of the key alone: our direct reads are alice's too, with a body.
        return [g for g in origin_gets(origin, mark, b, k) if g[1] != 206 or g[0] == svc]

    cold = read_all("miss")
    assert [g for g in cold if g[0] == client] == [(client, 304, 0)] * len(FRANGES), cold
    fills = [g for g in cold if g[0] == svc]
    assert len(fills) == FCHUNKS and all(st == 206 for _, st, _ in fills), cold
    assert sum(n for _, _, n in fills) == FSIZE  # each byte left the origin once
    wait_committed(d, FCHUNKS)
    warm = read_all("hit")
    assert warm == [(client, 304, 0)] * len(FRANGES), warm
    assert len(chunk_files(d)) == FCHUNKS
    assert_no_plaintext(d)


def test_cold_ranged_read_with_a_wrong_key_gets_the_origins_answer(origin, svc_lotad, users,
                                                                    tag):
    """A wrong key, K's MD5 with another key, or a reader the policy denies, on a ranged
    read of a version not cached: the origin's own answer, and nothing is filled; then the
    key's holder reads it right, from chunks filled with their key."""
    _, alice, bob = users
    d = svc_lotad()
    b, k, key, body = put_ssec(origin, users, FSIZE)
    rng = f"bytes={FCHUNK - 7}-{FCHUNK + 7}"
    for why, (who, extra) in denials(key, bob).items():
        who = who or alice
        extra = dict(extra, Range=rng)
        st, h, got = raw_get(origin, d.url, b, k, who, extra)
        ost, oh, ogot = raw_get(origin, origin.url, b, k, who, extra)
        assert (st, error_code(got)) == (ost, error_code(ogot)), (why, st, got[:300])
        assert st >= 400 and PATTERN not in got and "x-lota-cache" not in h, why
    assert d.metrics()["cache_fills_started"] == 0
    assert chunk_files(d) == []
    st, h, got = raw_get(origin, d.url, b, k, alice, dict(key_headers(key), Range=rng))
    assert st == 206 and got == body[FCHUNK - 7:FCHUNK + 8] and h["x-lota-cache"] == "miss"
    wait_committed(d, 2)
    st, h, got = raw_get(origin, d.url, b, k, alice, dict(key_headers(key), Range=rng))
    assert st == 206 and got == body[FCHUNK - 7:FCHUNK + 8] and h["x-lota-cache"] == "hit"
    # Still: the wrong key gets the origin's answer, with chunks of the object cached.
    other = key_headers(os.urandom(32))
    st, h, got = raw_get(origin, d.url, b, k, alice, dict(other, Range=rng))
    ost, _, ogot = raw_get(origin, origin.url, b, k, alice, dict(other, Range=rng))
    assert (st, error_code(got)) == (ost, error_code(ogot)) and st == 400
    assert "x-lota-cache" not in h and PATTERN not in got
    assert_no_plaintext(d)


def test_chunks_gone_from_the_disk_are_filled_again(origin, svc_lotad, users, tag):
    """A version cached whole (its 200 sealed) that lost chunks (evicted, removed): a GET
    with the key is still validated (304) and served, the missing chunks filled with the
    reader's key (a 206 each), never the whole object again."""
    d, b, k, key, body = cached_object(origin, svc_lotad, users, size=FSIZE)
    _, alice, _ = users
    wait_committed(d, FCHUNKS)
    files = sorted(chunk_files(d))
    assert len(files) == FCHUNKS
    gone = files[1::2]
    for p in gone:
        os.unlink(p)
    mark = origin.log_mark()
    st, h, got = raw_get(origin, d.url, b, k, alice, key_headers(key))
    assert st == 200 and got == body
    gets = origin_gets(origin, mark, b, k)
    assert (f"alice-{tag}", 304, 0) in gets and len(gets) == 1 + len(gone), gets
    assert all(u == f"ssecsvc-{tag}" and st == 206 for u, st, _ in gets if st != 304), gets
    wait_committed(d, FCHUNKS + len(gone))
    st, h, got = raw_get(origin, d.url, b, k, alice, dict(key_headers(key), Range="bytes=7-"))
    assert st == 206 and got == body[7:] and h["x-lota-cache"] == "hit"
    assert_no_plaintext(d)


def head_prestage(origin, d, b, k, who, extra):
    import urllib.request
    url, h = origin.signed_headers("HEAD", b, k, access=who[0], secret=who[1], endpoint=d.url,
                                   headers={"Range": "bytes=0-0"})
    h.update(extra)
    req = urllib.request.Request(url, headers=h, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {x.lower(): v for x, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {x.lower(): v for x, v in e.headers.items()}


def test_prestage_with_the_key(origin, svc_lotad, users, tag):
    """HEAD with Range: bytes=0-0 and the key: answered once every chunk is sealed and
    committed; a GET then is a hit, the origin sending no body. Without the key, or with a
    wrong one, the HEAD gets the origin's answer and nothing is filled."""
    _, alice, _ = users
    d = svc_lotad()
    b, k, key, body = put_ssec(origin, users, FSIZE)
    for extra in ({}, key_headers(os.urandom(32))):
        st, h = head_prestage(origin, d, b, k, alice, extra)
        assert st == 400 and "x-lota-prestage" not in h, (st, h)
    assert d.metrics()["cache_fills_started"] == 0
    st, h = head_prestage(origin, d, b, k, alice, key_headers(key))
    assert st == 206 and h["x-lota-prestage"] == "cached", h
    assert h["content-range"] == f"bytes 0-0/{FSIZE}"
    assert d.metrics()["cache_fills_committed"] == FCHUNKS  # before the answer
    mark = origin.log_mark()
    got = origin.s3(*alice, endpoint=d.url).get_object(Bucket=b, Key=k,
                                                       SSECustomerAlgorithm="AES256",
                                                       SSECustomerKey=key)
    assert got["Body"].read() == body
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-lota-cache"] == "hit"
    assert origin_gets(origin, mark, b, k) == [(f"alice-{tag}", 304, 0)]
    assert_no_plaintext(d)


def test_lotactl_prestage_with_a_key_file(origin, svc_lotad, users, tag, tmp_path):
    """`lotactl prestage --sse-c-key-file F s3://bucket/prefix/`: every object under the
    prefix, written with that key, is sealed in the cache."""
    b = users[0]
    d = svc_lotad()
    key = os.urandom(32)
    prefix = "ssec-stage-" + uuid.uuid4().hex[:6] + "/"
    bodies = {prefix + "o0": plaintext(FSIZE), prefix + "o1": plaintext(2 * MiB + 1)}
    for k, body in bodies.items():  # the bucket's owner: it may list the bucket
        origin.s3().put_object(Bucket=b, Key=k, Body=body, SSECustomerAlgorithm="AES256",
                               SSECustomerKey=key)
    kf = tmp_path / "key"
    kf.write_bytes(key)
    kf.chmod(0o600)
    env = origin.client_env(endpoint=d.url)
    p = subprocess.run([os.path.join(BUILD, "lotactl"), "prestage", "--endpoint", d.url,
                        "--sse-c-key-file", str(kf), f"s3://{b}/{prefix}"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 of 2 objects cached" in p.stdout, p.stdout
    assert d.metrics()["cache_fills_committed"] == FCHUNKS + 3
    s3 = origin.s3(endpoint=d.url)
    mark = origin.log_mark()
    for k, body in bodies.items():
        got = s3.get_object(Bucket=b, Key=k, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
        assert got["Body"].read() == body
        assert got["ResponseMetadata"]["HTTPHeaders"]["x-lota-cache"] == "hit"
    assert [r.status for r in origin.log_requests(mark, "GET")] == [304, 304]
    assert_no_plaintext(d)


def test_parallel_ranged_download_fills_each_chunk_once(origin, svc_lotad, users, tag,
                                                        tmp_path):
    """boto3's download_file with the key: parallel 8 MiB ranged GETs, cold, on both of
    lotad's workers. Every part is validated (304) and served from chunks filled with the
    key, each chunk once across the node (each byte leaves the origin once); the file is
    byte-exact, and a second download is all hits."""
    from boto3.s3.transfer import TransferConfig
    _, alice, _ = users
    d = svc_lotad()
    size = 3 * 8 * MiB + 4321
    b, k, key, body = put_ssec(origin, users, size)
    s3 = origin.s3(*alice, endpoint=d.url, max_pool_connections=8)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                         max_concurrency=4)
    extra = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    mark = origin.log_mark()
    s3.download_file(b, k, str(tmp_path / "cold"), ExtraArgs=extra, Config=cfg)
    assert (tmp_path / "cold").read_bytes() == body
    gets = origin_gets(origin, mark, b, k)
    client = [g for g in gets if g[0] == f"alice-{tag}"]
    fills = [g for g in gets if g[0] == f"ssecsvc-{tag}"]
    assert client and all(st == 304 for _, st, _ in client), client
    assert all(st == 206 for _, st, _ in fills), fills
    assert len(fills) == (size + MiB - 1) // MiB and sum(n for *_, n in fills) == size, fills
    wait_committed(d, len(fills))
    mark = origin.log_mark()
    s3.download_file(b, k, str(tmp_path / "warm"), ExtraArgs=extra, Config=cfg)
    assert (tmp_path / "warm").read_bytes() == body
    assert all(g[0] == f"alice-{tag}" and g[1] == 304 for g in origin_gets(origin, mark, b, k))
    assert_no_plaintext(d)
