"""Regions with peers (issue 15): two lotad nodes in network namespaces, each with both
regions' origins (two radosgw clusters, each in a namespace of its own), read a bucket of
the remote region. The chunks of an object spread over both nodes; a node that owns a
chunk of a bucket its own clients never named learns the bucket's location itself before
it fills it, so every fill goes to the bucket's origin: the remote origin's log shows each
byte of the object once, the default origin none, and every read through every node is
byte-exact. Addresses are 198.18.9.0/24 on a bridge inside namespaces this file makes."""

import hashlib
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cluster import NsLotad, Net, request, run_in_ns
from origin import Origin

SUBNET = "198.18.9."
NODES = ("n1", "n2")
IP = {"n1": SUBNET + "1", "n2": SUBNET + "2", "ra": SUBNET + "10", "rb": SUBNET + "11"}
PEER_ID = {n: "%s:8081" % IP[n] for n in NODES}
REGION_A = "eu-test-1"  # the default origin's
REGION_B = "us-east-1"  # the remote one
MiB = 1 << 20
CHUNK = 4 * MiB

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


def admin(o, *args):
    env = dict(os.environ, CEPH_CONF=os.path.join(o.dir, "ceph.conf"))
    p = subprocess.run(["ip", "netns", "exec", o.netns, "radosgw-admin", *args],
                       capture_output=True, text=True, timeout=60, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


def start_region(tmp, net, name, region, started):
    """An origin in namespace name whose buckets answer GetBucketLocation with region
    (test_regions.py says how); put in started as soon as it runs, for the fixture to
    stop whatever happens next."""
    o = Origin(tmp / name, bind=IP[name], port=7480, mon_port=3300, netns=net.ns(name),
               mem_gib=2)
    o.start()
    started[name] = o
    admin(o, "zonegroup", "modify", "--rgw-zonegroup", "default", "--api-name", region)
    pid = o.pids()["radosgw"]
    os.kill(pid, 9)
    for _ in range(100):
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split()[2] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.05)
    run_in_ns(net.ns(name), o.restart_radosgw)  # its readiness check connects from there
    return o


def wait_for(what, fn, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(what)


@pytest.fixture(scope="module")
def rc(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("regions-cluster")
    net = Net("rgc%d" % (os.getpid() % 100000), dict(IP))
    with net:
        origins = {}
        nodes = {}
        try:
            with ThreadPoolExecutor(2) as ex:
                fa = ex.submit(start_region, tmp, net, "ra", REGION_A, origins)
                fb = ex.submit(start_region, tmp, net, "rb", REGION_B, origins)
                errors = [f.exception() for f in (fa, fb)]
            assert errors == [None, None], errors
            a, b = origins["ra"], origins["rb"]
            secret = tmp / "cluster-secret"
            secret.write_bytes(os.urandom(24).hex().encode() + b"\n")
            creds = tmp / "service-credentials"
            creds.write_text("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                             % (a.access_key, a.secret_key))
            for n in NODES:
                nodes[n] = NsLotad(
                    tmp / n, a.url, netns=net.ns(n), config={"self": PEER_ID[n]},
                    listen="%s:8080" % IP[n], admin="%s:9090" % IP[n],
                    peer_listen=PEER_ID[n], peers=",".join(PEER_ID.values()),
                    cluster_secret=str(secret), workers=2, chunk_size="4M",
                    min_object_size="1M", service_credentials=str(creds),
                    region_origins="%s=%s,%s=%s" % (REGION_A, a.url, REGION_B, b.url))
                nodes[n].start()

            def converged():
                import json
                for n in NODES:
                    st = {m["id"]: m["state"] for m in
                          json.loads(nodes[n].get("/admin/peers"))["members"]}
                    if st != {PEER_ID[m]: ("self" if m == n else "up") for m in NODES}:
                        return False
                return True

            wait_for("both nodes see each other up", converged)
            yield net, a, b, nodes
        finally:
            for d in nodes.values():
                d.stop()
            for o in origins.values():
                o.stop()


def read(net, o, node, n, bucket, key):
    url, hdrs = o.signed_headers("GET", bucket, key, endpoint=node.url)
    return run_in_ns(net.ns(n), request, "GET", url, hdrs, timeout=90)


def test_a_remote_buckets_object_spreads_and_leaves_its_origin_once(rc):
    net, a, b, nodes = rc
    bucket, key = "rcb-remote", "obj"
    size = 12 * CHUNK + 4321
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    run_in_ns(net.ns("rb"), b.create_bucket, bucket)
    run_in_ns(net.ns("rb"), lambda: b.s3().put_object(Bucket=bucket, Key=key, Body=data))
    run_in_ns(net.ns("ra"), a.create_bucket, "rcb-local")  # so that A holds some bucket
    ma, mb = a.log_mark(), b.log_mark()
    before = {n: nodes[n].metrics() for n in NODES}
    for n in ("n1", "n2", "n1", "n2"):  # cold through n1, then every node, warm
        r = read(net, b, nodes[n], n, bucket, key)
        assert r.status == 200 and (r.length, r.sha256) == (size, sha), (n, r.status, r.body)
    path = "/%s/%s" % (bucket, key)
    gets_b = b.log_requests(mb, "GET", path)
    # each chunk's body left B once, to its owner's fill; every read was authorized at B
    assert sum(q.bytes for q in gets_b if q.status == 206) == size, [q.line for q in gets_b]
    assert sorted(q.status for q in gets_b if q.status != 206) == [304] * 4, \
        [q.line for q in gets_b]
    # A (the default) only said it does not hold the bucket, once per node
    at_a = [q for q in a.log_requests(ma) if q.path.startswith("/" + bucket)]
    assert [(q.query, q.status) for q in at_a] == [("location", 404)] * 2, \
        [q.line for q in at_a]
    after = {n: nodes[n].metrics() for n in NODES}
    for n in NODES:
        d = {m: after[n].get(m, 0) - before[n].get(m, 0) for m in after[n]}
        assert after[n]["cache_entries"] > 0, (n, after[n])  # the chunks spread
        assert d.get("peer_chunk_failovers", 0) == 0 and d.get("peer_fallbacks", 0) == 0, \
            (n, d)
        assert "location: bucket %s is in region '%s'" % (bucket, REGION_B) in \
            nodes[n].log_text(), n
