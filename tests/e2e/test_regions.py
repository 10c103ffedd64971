"""Cross-region reads (issue 15): one lotad in front of two real radosgw clusters on
loopback, each a region with buckets of its own. lotad learns each bucket's home region
with GetBucketLocation and sends every request for it (reads, writes, lists, its own fills
and HEADs) to that region's origin; each origin's request log must show only its own
buckets.

How the two clusters get region names: radosgw answers GetBucketLocation with the api_name
of the bucket's zonegroup ("default" on a fresh cluster). `rgw_zonegroup = NAME` in
ceph.conf (ORIGIN_CONF_EXTRA) makes radosgw refuse to start ("failed reading zonegroup
info": the zonegroup must exist, and `zonegroup create` needs a realm), so each origin's
default zonegroup gets its api_name with `radosgw-admin zonegroup modify --api-name`, and
radosgw is restarted to read it. A bucket whose zonegroup (bucket.instance metadata) names
a zonegroup the cluster does not know gets 301 PermanentRedirect (empty body, no region)
for every request but GetBucketLocation, which then answers an empty LocationConstraint:
S3's spelling of us-east-1. That is how a test moves a bucket to the other region."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from lotad import BUILD, Lotad
from origin import Origin

HOST = "cwlota.com"
MiB = 1 << 20
REGION_A = "eu-test-1"  # the default origin's region
REGION_B = "us-east-1"  # the remote one (the region an empty LocationConstraint names)
_POOL = os.urandom(16 * MiB)


def rand(n, seed):
    off = (seed * 7919) % (len(_POOL) - MiB)
    out = bytearray()
    while len(out) < n:
        out += _POOL[off:off + min(MiB, n - len(out))]
        off = (off + 104729) % (len(_POOL) - MiB)
    return bytes(out)


def radosgw_admin(o, *args):
    env = dict(os.environ, CEPH_CONF=os.path.join(o.dir, "ceph.conf"))
    p = subprocess.run(["radosgw-admin", *args], capture_output=True, text=True, timeout=60,
                       env=env, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


def kill_radosgw(o):
    pid = o.pids()["radosgw"]
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)


def name_region(o, region):
    """The origin's buckets answer GetBucketLocation with region (see the docstring)."""
    radosgw_admin(o, "zonegroup", "modify", "--rgw-zonegroup", "default", "--api-name", region)
    kill_radosgw(o)
    o.restart_radosgw()


def start_region(path, region):
    o = Origin(path)
    o.start()
    name_region(o, region)
    return o


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    """(a, b): two origins, regions REGION_A and REGION_B, started side by side."""
    with ThreadPoolExecutor(2) as ex:
        fa = ex.submit(start_region, tmp_path_factory.mktemp("region-a"), REGION_A)
        fb = ex.submit(start_region, tmp_path_factory.mktemp("region-b"), REGION_B)
        started = []
        for f in (fa, fb):
            try:
                started.append(f.result())
            except Exception:
                for o in started:
                    o.stop()
                raise
    yield started
    for o in started:
        o.stop()


@pytest.fixture(scope="module")
def buckets(regions):
    a, b = regions
    tag = uuid.uuid4().hex[:8]
    ba, bb = "ra-" + tag, "rb-" + tag
    a.create_bucket(ba)
    b.create_bucket(bb)
    assert a.s3().get_bucket_location(Bucket=ba)["LocationConstraint"] == REGION_A
    assert b.s3().get_bucket_location(Bucket=bb)["LocationConstraint"] == REGION_B
    return ba, bb


def write_creds(path, o):
    path.write_text(f"[default]\naws_access_key_id = {o.access_key}\n"
                    f"aws_secret_access_key = {o.secret_key}\n")
    return str(path)


@pytest.fixture
def lotad(regions, tmp_path):
    """lotad with origin = region A and both regions in region-origins; service
    credentials are the buckets' owner's (the same keys on both clusters)."""
    a, b = regions
    d = Lotad(tmp_path / "lotad", a.url, chunk_size="1M", min_object_size="1M",
              service_credentials=write_creds(tmp_path / "svc", a),
              region_origins=f"{REGION_A}={a.url},{REGION_B}={b.url}")
    d.start()
    yield d
    d.stop()


def ep(d):
    return f"http://{HOST}:{d.port}"


def buckets_in(o, since):
    """The buckets named by the origin's logged requests (path-style: the first segment),
    but for lotad's GetBucketLocation answered 404: asking the origins in turn, lotad asks
    ones that do not hold the bucket (at most once each; test_location_is_learned_once)."""
    return {r.path.split("/")[1] for r in o.log_requests(since)
            if r.path.count("/") >= 1 and not (r.query == "location" and r.status == 404)}


def location_lines(d, bucket):
    return [ln for ln in d.log_text().splitlines()
            if "location: bucket " + bucket + " " in ln]


def signed_get(o, d, bucket, key):
    """(status, headers, body) of a signed GET through lotad, with no client redirect logic."""
    url, h = o.signed_headers("GET", bucket, key, endpoint=ep(d))
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def lotactl_status(d):
    p = subprocess.run([os.path.join(BUILD, "lotactl"), "--admin", "unix:" + d.admin_socket,
                        "status"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


# -- tests ---------------------------------------------------------------------------------

def test_reads_writes_lists_go_to_each_buckets_origin(regions, buckets, lotad):
    a, b = regions
    ba, bb = buckets
    ma, mb = a.log_mark(), b.log_mark()
    s3 = a.s3(endpoint=ep(lotad))
    bodies = {}
    for bucket in (ba, bb):
        for i, size in enumerate((1000, 3 * MiB + 5)):
            key = f"rw/{i}.bin"
            bodies[bucket, key] = rand(size, hash((bucket, i)) & 0xffff)
            s3.put_object(Bucket=bucket, Key=key, Body=bodies[bucket, key])
    for (bucket, key), body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        r = s3.get_object(Bucket=bucket, Key=key, Range="bytes=10-99")
        assert r["Body"].read() == body[10:100]
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)
    for bucket in (ba, bb):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == ["rw/0.bin", "rw/1.bin"]
    # The bytes are where the writes were relayed: each bucket on its own origin.
    assert b.s3().get_object(Bucket=bb, Key="rw/1.bin")["Body"].read() == bodies[bb, "rw/1.bin"]
    s3.delete_object(Bucket=bb, Key="rw/0.bin")
    assert [o["Key"] for o in b.s3().list_objects_v2(Bucket=bb)["Contents"]] == ["rw/1.bin"]
    assert buckets_in(a, ma) <= {ba}, "origin A saw requests for another region's bucket"
    assert buckets_in(b, mb) == {bb}, "origin B saw requests for another region's bucket"
    m = lotad.metrics()
    assert m[f'origin_requests_by_origin{{origin="{b.url[7:]}",region="{REGION_B}"}}'] > 0
    assert m[f'origin_requests_by_origin{{origin="{a.url[7:]}",region="{REGION_A}"}}'] > 0
    assert m["responses_5xx"] == 0


def test_remote_object_is_cached_and_hit(regions, buckets, lotad):
    a, b = regions
    _, bb = buckets
    body = rand(5 * MiB + 123, 3)
    b.s3().put_object(Bucket=bb, Key="hit/obj", Body=body)
    s3 = a.s3(endpoint=ep(lotad))
    ma, mb = a.log_mark(), b.log_mark()
    r = s3.get_object(Bucket=bb, Key="hit/obj")
    assert r["Body"].read() == body
    mb2 = b.log_mark()
    r = s3.get_object(Bucket=bb, Key="hit/obj")
    assert r["Body"].read() == body
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-cache"] == "hit"
    # The hit was authorized by B (a 304) and took no body from it; A saw nothing of it.
    # (A version learnt within its Last-Modified second may also get lotad's one HEAD,
    # cachepath/young.h.)
    second = b.log_requests(mb2, path=f"/{bb}/hit/obj")
    assert [(q.status, q.bytes) for q in second if q.method == "GET"] == [(304, 0)]
    assert not [q for q in second if q.bytes], [(q.method, q.status, q.bytes) for q in second]
    assert b.body_bytes("GET", f"/{bb}/hit/obj", since=mb) == len(body)
    assert bb not in buckets_in(a, ma)


def test_prestage_of_a_remote_object_fills_from_its_origin(regions, buckets, lotad):
    a, b = regions
    _, bb = buckets
    body = rand(4 * MiB + 7, 5)
    b.s3().put_object(Bucket=bb, Key="pre/obj", Body=body)
    s3 = a.s3(endpoint=ep(lotad))
    ma, mb = a.log_mark(), b.log_mark()
    r = s3.head_object(Bucket=bb, Key="pre/obj", Range="bytes=0-0")
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-prestage"] == "cached"
    # lotad's own ranged GETs went to B and brought every byte.
    assert b.body_bytes("GET", f"/{bb}/pre/obj", since=mb) == len(body)
    mb2 = b.log_mark()
    r = s3.get_object(Bucket=bb, Key="pre/obj")
    assert r["Body"].read() == body
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-lota-cache"] == "hit"
    assert b.body_bytes("GET", f"/{bb}/pre/obj", since=mb2) == 0
    assert bb not in buckets_in(a, ma)


def test_location_is_learned_once(regions, buckets, lotad):
    a, b = regions
    tag = uuid.uuid4().hex[:8]
    bucket = "once-" + tag
    b.create_bucket(bucket)
    body = rand(200_000, 9)
    b.s3().put_object(Bucket=bucket, Key="k", Body=body)
    ma, mb = a.log_mark(), b.log_mark()
    s3 = a.s3(endpoint=ep(lotad))
    # Sixteen requests at once on a bucket lotad has never seen: one asks, the rest wait.
    with ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda _: s3.get_object(Bucket=bucket, Key="k")["Body"].read(),
                          range(16)))
    assert got == [body] * 16
    for _ in range(5):
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
        s3.list_objects_v2(Bucket=bucket)
    lines = location_lines(lotad, bucket)
    assert len(lines) == 1 and f"in region '{REGION_B}'" in lines[0], lines
    asked = [q for o, m in ((a, ma), (b, mb)) for q in o.log_requests(m, path="/" + bucket)
             if q.query == "location"]
    # A (the default, asked first) does not hold it: 404; B names its region.
    assert sorted((q.status for q in asked)) == [200, 404]
    assert buckets_in(a, ma) == set()


def move_to_unknown_zonegroup(o, bucket):
    """From now on o answers 301 for bucket, and an empty LocationConstraint (us-east-1)."""
    entry = json.loads(radosgw_admin(o, "metadata", "get", "bucket:" + bucket))
    bid = entry["data"]["bucket"]["bucket_id"]
    inst = json.loads(radosgw_admin(o, "metadata", "get", f"bucket.instance:{bucket}:{bid}"))
    inst["data"]["bucket_info"]["zonegroup"] = "moved-" + uuid.uuid4().hex[:8]
    path = os.path.join(o.dir, "inst.json")
    with open(path, "w") as f:
        json.dump(inst, f)
    env = dict(os.environ, CEPH_CONF=os.path.join(o.dir, "ceph.conf"))
    with open(path) as f:
        p = subprocess.run(["radosgw-admin", "metadata", "put", f"bucket.instance:{bucket}:{bid}"],
                           stdin=f, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr


def test_redirect_makes_the_location_learned_again(regions, lotad):
    a, b = regions
    bucket = "mv-" + uuid.uuid4().hex[:8]
    body_a, body_b = rand(300_000, 11), rand(300_000, 12)
    for o, body in ((a, body_a), (b, body_b)):
        o.create_bucket(bucket)
        o.s3().put_object(Bucket=bucket, Key="k", Body=body)
    assert signed_get(a, lotad, bucket, "k")[2] == body_a  # A asked first: A's
    assert len(location_lines(lotad, bucket)) == 1
    move_to_unknown_zonegroup(a, bucket)
    status, _, _ = signed_get(a, lotad, bucket, "k")
    assert status == 301  # the origin's answer, relayed as it is
    assert "for bucket " + bucket + ": its location is learned again" in lotad.log_text()
    status, _, got = signed_get(a, lotad, bucket, "k")
    assert status == 200 and got == body_b
    lines = location_lines(lotad, bucket)
    assert len(lines) == 2 and f"in region '{REGION_B}'" in lines[1], lines


def test_a_dead_region_fails_only_its_own_buckets(regions, buckets, lotad):
    a, b = regions
    ba, bb = buckets
    body_a, body_b = rand(100_000, 21), rand(100_000, 22)
    a.s3().put_object(Bucket=ba, Key="dead/k", Body=body_a)
    b.s3().put_object(Bucket=bb, Key="dead/k", Body=body_b)
    s3 = a.s3(endpoint=ep(lotad))
    assert s3.get_object(Bucket=bb, Key="dead/k")["Body"].read() == body_b  # learned
    kill_radosgw(b)
    try:
        t0 = time.monotonic()
        status, _, _ = signed_get(a, lotad, bb, "dead/k")
        assert status in (502, 504)
        assert time.monotonic() - t0 < 10
        for _ in range(3):
            status, got, took = timed_get(a, lotad, ba, "dead/k")
            assert status == 200 and got == body_a and took < 1.5, (status, took)
            t0 = time.monotonic()
            assert s3.get_object(Bucket=ba, Key="dead/k")["Body"].read() == body_a
            assert time.monotonic() - t0 < 1.5
        out = lotactl_status(lotad)
        assert f"{b.url} (region {REGION_B}): DOWN" in out, out
        assert f"{a.url} (region {REGION_A}): up" in out, out
        m = lotad.metrics()
        assert m[f'origin_up{{origin="{b.url[7:]}",region="{REGION_B}"}}'] == 0
        assert m[f'origin_up{{origin="{a.url[7:]}",region="{REGION_A}"}}'] == 1
    finally:
        b.restart_radosgw()
    assert s3.get_object(Bucket=bb, Key="dead/k")["Body"].read() == body_b
    assert f"{b.url} (region {REGION_B}): up" in lotactl_status(lotad)


def lotad_for(regions, tmp_path, **cfg):
    """A lotad of its own in front of both regions (origin = A), keys as Lotad takes them."""
    a, b = regions
    d = Lotad(tmp_path / "lotad-own", a.url, chunk_size="1M", min_object_size="1M",
              service_credentials=write_creds(tmp_path / "svc-own", a),
              region_origins=f"{REGION_A}={a.url},{REGION_B}={b.url}", **cfg)
    return d.start()


def open_get(o, d, bucket, key, rcvbuf=64 * 1024):
    """A signed GET through d on a socket with a small receive buffer, so that lotad's
    sending (and the chunk fills it paces) stops while the caller does not read: the
    response, whose body the caller reads."""
    url, h = o.signed_headers("GET", bucket, key, endpoint=ep(d))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(60)
    s.connect(("127.0.0.1", d.port))
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    conn.sock = s
    u = urllib.parse.urlsplit(url)
    conn.putrequest("GET", u.path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", u.netloc)
    for k, v in h.items():
        conn.putheader(k, v)
    conn.endheaders()
    return conn, conn.getresponse()


def wait_for_301(o, bucket, key, timeout=30):
    """Until o answers 301 for bucket/key (radosgw takes the new bucket info at once or
    nearly)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        url, h = o.signed_headers("HEAD", bucket, key)
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=h, method="HEAD"),
                                   timeout=10).close()
        except urllib.error.HTTPError as e:
            if e.code == 301:
                return
        time.sleep(0.2)
    raise AssertionError(f"{bucket} still not redirected by {o.url}")


def test_fills_follow_a_bucket_that_moved_mid_read(regions, tmp_path):
    """A read under way when its bucket moves from A to B (the same object on both, as a
    migration leaves it): the client was authorized by A, then A answers lotad's next
    chunk fill with 301. lotad learns the bucket's location again and fills the rest from
    B: the read completes byte-exact and each byte came from an origin once."""
    a, b = regions
    bucket = "mvf-" + uuid.uuid4().hex[:8]
    body = rand(40 * MiB + 5, 31)
    for o in (a, b):
        o.create_bucket(bucket)
        o.s3().put_object(Bucket=bucket, Key="big", Body=body)
    d = lotad_for(regions, tmp_path, fill_parallelism=1)  # a fill only when the read is there
    try:
        s3 = a.s3(endpoint=ep(d))
        ma, mb = a.log_mark(), b.log_mark()
        # first contact: the location (A, asked first) and, with lotad's HEAD, the version
        assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=0-0")["Body"].read() == \
            body[:1]
        conn, r = open_get(a, d, bucket, "big")
        try:
            assert r.status == 200 and r.getheader("x-lota-cache") != "hit"
            got = r.read(MiB)  # lotad has sent what the sockets hold, and stops
            move_to_unknown_zonegroup(a, bucket)
            wait_for_301(a, bucket, "big")
            moved = a.log_mark()
            got += r.read()
        finally:
            conn.close()
        assert len(got) == len(body) and got == body
        path = f"/{bucket}/big"
        fill = lambda q: q.range and q.range != "bytes=0-0"  # not the client's own range
        from_a = [q for q in a.log_requests(ma, "GET", path) if fill(q)]
        after_a = [q for q in a.log_requests(moved, "GET", path) if fill(q)]
        from_b = [q for q in b.log_requests(mb, "GET", path) if fill(q)]
        # A filled chunks until it answered one fill with 301; B filled every chunk after
        assert [q.status for q in after_a] == [301], [q.line for q in after_a]
        assert len(from_a) > 1 and [q.status for q in from_a] == \
            [206] * (len(from_a) - 1) + [301], [q.line for q in from_a]
        assert from_b and all(q.status == 206 for q in from_b), [q.line for q in from_b]
        assert sum(q.bytes for q in from_a + from_b if q.status == 206) == len(body)
        assert f"to lotad's request for bucket {bucket}: its location is learned again" in \
            d.log_text()
        lines = location_lines(d, bucket)
        assert len(lines) == 2 and f"in region '{REGION_B}'" in lines[1], lines
    finally:
        d.stop()


def test_list_buckets_goes_to_the_default_origin(regions, buckets, lotad):
    """GET / names no bucket: the default origin answers it, the other is not asked."""
    a, b = regions
    ba, bb = buckets
    direct = [x["Name"] for x in a.s3().list_buckets()["Buckets"]]
    ma, mb = a.log_mark(), b.log_mark()
    names = [x["Name"] for x in a.s3(endpoint=ep(lotad)).list_buckets()["Buckets"]]
    assert ba in names and bb not in names and names == direct
    assert [(q.method, q.path, q.status) for q in a.log_requests(ma)] == [("GET", "/", 200)]
    assert b.log_requests(mb) == []
    assert not location_lines(lotad, "")


def test_an_origins_own_400_is_relayed_and_moves_nothing(regions, buckets, lotad):
    """radosgw's 400s carry an XML error body but never a region (it takes any region in a
    client's credential scope, and never answers AuthorizationHeaderMalformed): the body
    reaches the client as it is, and the bucket stays where it is."""
    a, b = regions
    _, bb = buckets
    s3 = a.s3(endpoint=ep(lotad))
    s3.list_objects_v2(Bucket=bb)  # learned: B
    url, h = b.signed_headers("GET", bb, endpoint=ep(lotad), query="list-type=2&max-keys=abc")
    direct_url, dh = b.signed_headers("GET", bb, query="list-type=2&max-keys=abc")
    got, want = [], []
    for u, hh, out in ((url, h, got), (direct_url, dh, want)):
        try:
            urllib.request.urlopen(urllib.request.Request(u, headers=hh), timeout=30)
        except urllib.error.HTTPError as e:
            out.append((e.code, e.read()))
    assert got and got[0][0] == 400 and b"<Error>" in got[0][1], got
    # the same error as the origin's own (but for its request id)
    strip = lambda x: re.sub(rb"<(RequestId|HostId)>[^<]*</\1>", b"", x)
    assert strip(got[0][1]) == strip(want[0][1])
    assert "its location is learned again" not in lotad.log_text()
    assert len(location_lines(lotad, bb)) == 1


def timed_get(o, d, bucket, key):
    t0 = time.monotonic()
    status, _, body = signed_get(o, d, bucket, key)
    return status, body, time.monotonic() - t0


def test_a_silent_region_fails_its_buckets_on_its_own_timeout(regions, buckets, tmp_path):
    """A region whose origin takes connections but answers nothing (radosgw stopped, the
    kernel still completing handshakes): with origin-timeouts giving it a 3 s read
    timeout (origin-timeout stays 30 s), its buckets' clients get 504 after about 3 s,
    while the other region's clients, asking at the same time, are served at once."""
    a, b = regions
    ba, bb = buckets
    body_a, body_b = rand(50_000, 41), rand(50_000, 42)
    a.s3().put_object(Bucket=ba, Key="silent/k", Body=body_a)
    b.s3().put_object(Bucket=bb, Key="silent/k", Body=body_b)
    d = lotad_for(regions, tmp_path, origin_timeout=30, origin_timeouts=f"{REGION_B}=1s/3s")
    rgw = b.pids()["radosgw"]
    try:
        assert signed_get(a, d, bb, "silent/k")[2] == body_b  # learned, and a pooled conn
        assert signed_get(a, d, ba, "silent/k")[2] == body_a
        os.kill(rgw, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as ex:
            stuck = ex.submit(timed_get, a, d, bb, "silent/k")
            time.sleep(0.2)
            others = [timed_get(a, d, ba, "silent/k") for _ in range(5)]
            assert not stuck.done(), "B's client was answered before its timeout"
            status, _, took = stuck.result()
        assert status == 504 and 2.5 < took < 8, (status, took)
        for status, got, t in others:
            assert status == 200 and got == body_a and t < 1.5, (status, t)
        out = lotactl_status(d)
        assert f"{b.url} (region {REGION_B}): DOWN" in out and "(connect 1000 ms, read 3000 ms)" \
            in out, out
        assert f"{a.url} (region {REGION_A}): up" in out and \
            "(connect 30000 ms, read 30000 ms)" in out, out
    finally:
        os.kill(rgw, signal.SIGCONT)
        d.stop()


def test_a_region_that_drops_connects_fails_on_its_connect_timeout(regions, buckets,
                                                                    tmp_path):
    """A region whose address takes no connection at all (a listening socket whose
    backlog is full: the kernel drops every SYN, as a dead network does; it never speaks
    HTTP): its pinned bucket's clients get 504 after its 1 s connect timeout, not its
    10 s read timeout, and the other regions' clients are not held up."""
    a, b = regions
    ba, _ = buckets
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(0)
    filler = socket.create_connection(dead.getsockname(), timeout=2)  # the backlog: full
    url = "http://127.0.0.1:%d" % dead.getsockname()[1]
    body_a = rand(30_000, 43)
    a.s3().put_object(Bucket=ba, Key="dead/k", Body=body_a)
    d = Lotad(tmp_path / "lotad-dead", a.url, chunk_size="1M", min_object_size="1M",
              service_credentials=write_creds(tmp_path / "svc-dead", a),
              region_origins=f"{REGION_A}={a.url},{REGION_B}={b.url},ap-dead-1={url}",
              bucket_origins=f"pinned-dead={url}", origin_timeouts="ap-dead-1=1s/10s")
    d.start()
    try:
        with ThreadPoolExecutor(1) as ex:
            stuck = ex.submit(timed_get, a, d, "pinned-dead", "k")
            time.sleep(0.2)
            status, got, t = timed_get(a, d, ba, "dead/k")
            assert status == 200 and got == body_a and t < 1.5, (status, t)
            status, _, took = stuck.result()
        assert status == 504 and 0.8 < took < 4, (status, took)
        assert f"{url} (region ap-dead-1): DOWN" in lotactl_status(d)
    finally:
        d.stop()
        filler.close()
        dead.close()
