"""The test origin itself: scripts/origin.sh + tests/lib/origin.py give a real S3 server
(Ceph radosgw) that verifies signatures, enforces bucket policies, answers conditional
GETs and logs every body it sends. These tests prove that harness before others rely on it.
"""

import hashlib
import http.client
import os
import subprocess
import time
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from origin import Origin  # tests/lib, on the path through tests/conftest.py

MIB = 1 << 20

# The session's origin is tests/conftest.py's `origin` fixture, shared with every suite.


@pytest.fixture(scope="session")
def bucket(origin):
    return origin.create_bucket("harness")


def status_of(exc):
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def pattern_block(i, base):
    # Each MiB carries its own index, so a misplaced or repeated block changes the hash.
    return i.to_bytes(8, "little") + base[8:]


def http_conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60), u


def test_put_get_64mib_byte_exact(origin, bucket):
    s3 = origin.s3()
    data = os.urandom(64 * MIB)
    put = s3.put_object(Bucket=bucket, Key="exact/64m", Body=data)
    assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    got = s3.get_object(Bucket=bucket, Key="exact/64m")
    assert got["ContentLength"] == len(data)
    assert got["Body"].read() == data


def test_1gib_single_stream_put_and_get(origin, bucket):
    """One PUT with Content-Length and an unsigned streamed body, then one GET."""
    size, base = 1024 * MIB, os.urandom(MIB)
    start = time.monotonic()
    url, headers = origin.signed_headers("PUT", bucket, "big/1g")
    headers["Content-Length"] = str(size)
    conn, u = http_conn(url)
    conn.putrequest("PUT", u.path, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    md5 = hashlib.md5()
    for i in range(size // MIB):
        block = pattern_block(i, base)
        md5.update(block)
        conn.send(block)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    resp.read()
    assert resp.getheader("ETag") == '"%s"' % md5.hexdigest()
    put_s = time.monotonic() - start

    url, headers = origin.signed_headers("GET", bucket, "big/1g")
    conn.request("GET", u.path, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200
    got, buf, n = hashlib.md5(), bytearray(4 * MIB), 0
    view = memoryview(buf)
    while True:
        k = resp.readinto(buf)
        if not k:
            break
        got.update(view[:k])
        n += k
    conn.close()
    assert n == size and got.hexdigest() == md5.hexdigest()
    total = time.monotonic() - start
    print(f"1 GiB: PUT {put_s:.1f} s, PUT+GET {total:.1f} s, RSS {origin.rss_kib()}")
    assert total < 40
    origin.s3().delete_object(Bucket=bucket, Key="big/1g")


def test_multipart_100mib(origin, bucket):
    s3 = origin.s3()
    parts = [os.urandom(20 * MIB) for _ in range(5)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/100m")
    done = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp/100m", UploadId=up["UploadId"],
                           PartNumber=n, Body=body)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp/100m",
                                     UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": done})
    # S3's multipart ETag: md5 of the concatenated binary part md5s, then -<parts>.
    want = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    want = '"%s-5"' % want
    # radosgw 16.2.15 answers CompleteMultipartUpload with an empty <ETag></ETag>;
    # HEAD and GET carry the right one.
    assert r["ETag"] in ("", want)
    assert s3.head_object(Bucket=bucket, Key="mp/100m")["ETag"] == want
    got = s3.get_object(Bucket=bucket, Key="mp/100m")
    assert got["ContentLength"] == 100 * MIB
    assert got["ETag"] == want
    assert got["Body"].read() == b"".join(parts)


def test_bucket_policy_grants_prefix_only(origin):
    s3 = origin.s3()
    bkt = origin.create_bucket("bkt")
    s3.put_object(Bucket=bkt, Key="pub/a", Body=b"public")
    s3.put_object(Bucket=bkt, Key="priv/b", Body=b"private")
    access, secret = origin.create_user("bob")
    bob = origin.s3(access, secret)
    with pytest.raises(ClientError) as e:
        bob.get_object(Bucket=bkt, Key="pub/a")
    assert status_of(e.value) == 403
    origin.set_bucket_policy(bkt, Origin.policy_allow("bob", bkt, "pub/"))
    assert bob.get_object(Bucket=bkt, Key="pub/a")["Body"].read() == b"public"
    for call in (lambda: bob.get_object(Bucket=bkt, Key="priv/b"),
                 lambda: bob.put_object(Bucket=bkt, Key="pub/c", Body=b"x")):
        with pytest.raises(ClientError) as e:
            call()
        assert status_of(e.value) == 403
    # A wrong secret is refused: the origin really checks signatures.
    with pytest.raises(ClientError) as e:
        origin.s3(access, "not-" + secret).get_object(Bucket=bkt, Key="pub/a")
    assert status_of(e.value) == 403


def test_presigned_get_with_curl(origin, bucket):
    body = os.urandom(100_000)
    origin.s3().put_object(Bucket=bucket, Key="presign/obj", Body=body)
    url = origin.presign(bucket, "presign/obj")
    out = subprocess.run(["curl", "-sSf", "--noproxy", "*", url], capture_output=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == body
    tampered = url.replace("presign/obj", "presign/other")
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                          "--noproxy", "*", tampered], capture_output=True, timeout=30)
    assert out.stdout == b"403"


def test_if_none_match_unsigned_on_signed_get(origin, bucket):
    s3 = origin.s3()
    etag = s3.put_object(Bucket=bucket, Key="cond/obj", Body=b"x" * 1000)["ETag"]
    url, headers = origin.signed_headers("GET", bucket, "cond/obj")
    headers["If-None-Match"] = etag  # added after signing: not in SignedHeaders
    conn, u = http_conn(url)
    conn.request("GET", u.path, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 304 and resp.read() == b""
    headers["If-None-Match"] = '"0123456789abcdef0123456789abcdef"'
    conn.request("GET", u.path, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"x" * 1000
    conn.close()
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond/obj", IfNoneMatch=etag)
    assert status_of(e.value) == 304


def test_log_counts_bodies(origin, bucket):
    s3 = origin.s3()
    size = 5 * MIB
    s3.put_object(Bucket=bucket, Key="log/obj", Body=os.urandom(size))
    mark = origin.log_mark()
    s3.get_object(Bucket=bucket, Key="log/obj")["Body"].read()
    s3.get_object(Bucket=bucket, Key="log/obj", Range="bytes=100-1099")["Body"].read()
    s3.head_object(Bucket=bucket, Key="log/obj")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="log/missing")
    reqs = origin.log_requests(since=mark)
    assert [(r.method, r.path, r.status) for r in reqs] == [
        ("GET", "/harness/log/obj", 200), ("GET", "/harness/log/obj", 206),
        ("HEAD", "/harness/log/obj", 200), ("GET", "/harness/log/missing", 404)]
    assert reqs[1].range == "bytes=100-1099" and reqs[2].bytes == 0
    assert origin.body_bytes("GET", "/harness/log/obj", since=mark) == size + 1000
    assert origin.body_bytes("GET", "/harness/log/missing", since=mark) == 0
    assert all(r.user == origin.access_key for r in reqs)
