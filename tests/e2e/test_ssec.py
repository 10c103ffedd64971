"""SSE-C objects cached sealed, served only to a reader who presents the key (issue 14),
against the real radosgw with real clients (boto3 SSECustomerKey, curl --aws-sigv4).

- PUT with K through lotad; GET with K twice: the second is a hit (the origin's log shows
  a 304 and no body), bytes exact.
- With a copy cached: no key, a wrong key, K's MD5 with another key, and a user the policy
  denies each get exactly the origin's answer (status and S3 error code, measured against
  radosgw directly), never a cached byte.
- The cache directory holds no plaintext and no K, MD5(K) or SHA-256(K) in any form.
- Ranged reads, cold and warm, byte-exact, with the origin's status and Content-Range.
- Spellings and algorithms lotad does not take are relayed untouched and never cached."""

import base64
import hashlib
import os
import re
import subprocess
import time
import uuid

import pytest

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
def users(origin):
    """A bucket with alice (everything, by policy) and bob (GetObject on pub/ only)."""
    tag = uuid.uuid4().hex[:8]
    b = "ssec-" + tag
    origin.create_bucket(b)
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    a = origin.create_user(alice)
    bb = origin.create_user(bob)
    pol = Origin.policy_allow(alice, b, actions=("s3:*",))
    pol["Statement"] += Origin.policy_allow(bob, b, prefix="pub/")["Statement"]
    origin.set_bucket_policy(b, pol)
    return b, a, bb


def cached_object(origin, make_lotad, users, size=SIZE):
    """An SSE-C object PUT through lotad with boto3, read once with K (cold, relayed and
    sealed) and committed: (lotad, bucket, key, K, plaintext)."""
    b, alice, _ = users
    d = make_lotad()
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
    assert chunk_files(d) == []  # ranged cold reads are relayed: nothing sealed yet
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
