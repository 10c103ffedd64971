"""One cache across the cluster (issue 6): three lotad nodes, each in its own network
namespace with its own cache directory, on a test bridge; the origin (radosgw) in a
fourth namespace. Every address lives in namespaces this file creates (198.18.7.0/24 on
a bridge inside a switch namespace, no default routes); clients run as threads that
entered a node's namespace, like pods on that node.

Placement is checked against user/lib/hrw.c's rendezvous hash computed here in Python, and
the origin's request log counts the bodies radosgw sent."""

import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest

from cluster import (NsLotad, Net, as_sent, hrw_owner, in_ns, peer_header, peer_header_v1,
                     request, run_in_ns)
from origin import Origin

BUCKET = "clu"
SUBNET = "198.18.7."
NODES = ("n1", "n2", "n3")
IP = {"n1": SUBNET + "1", "n2": SUBNET + "2", "n3": SUBNET + "3", "or": SUBNET + "10"}
PEER_PORT = 8081
PEER_ID = {n: "%s:%d" % (IP[n], PEER_PORT) for n in NODES}
MiB = 1 << 20
N_OBJECTS = 20
CHUNK = 16 * MiB  # lotad's default chunk-size: the unit the store counts


def chunks(n):
    return max(1, (n + CHUNK - 1) // CHUNK)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


def wait_for(what, fn, timeout=15, every=0.2):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError("%s: not after %ss (last: %r)" % (what, timeout, last))


class Cluster:
    def __init__(self, tmp, net, origin, secret):
        self.tmp, self.net, self.origin, self.secret = tmp, net, origin, secret
        self.nodes = {}
        self.objects = {}  # key -> (size, sha256)

    def ns(self, name):
        return self.net.ns(name)

    def make_node(self, n):
        d = NsLotad(
            self.tmp / n, self.origin.url, netns=self.ns(n), config={"self": PEER_ID[n]},
            listen="%s:8080" % IP[n], admin="%s:9090" % IP[n],
            peer_listen=PEER_ID[n], peers=",".join(PEER_ID[m] for m in NODES),
            cluster_secret=self.secret_path, workers=2, origin_timeout=30)
        self.nodes[n] = d
        return d

    def owner(self, key, live=NODES):
        ids = [PEER_ID[n] for n in live]
        oid = hrw_owner(ids, BUCKET, key)
        return next(n for n in NODES if PEER_ID[n] == oid)

    def peers_json(self, n):
        return json.loads(self.nodes[n].get("/admin/peers"))

    def states(self, n):
        return {m["id"]: m["state"] for m in self.peers_json(n)["members"]}

    def converged(self):
        for n in NODES:
            st = self.states(n)
            want = {PEER_ID[m]: ("self" if m == n else "up") for m in NODES}
            if st != want:
                return False
        return True

    def metric(self, n, name):
        return self.nodes[n].metrics().get(name, 0)

    def signed(self, method, key, endpoint, access=None, secret=None, headers=None):
        return self.origin.signed_headers(method, BUCKET, key, endpoint=endpoint,
                                          access=access, secret=secret, headers=headers)

    def read(self, n, key, **kw):
        """GET bucket/key through node n's client port, from node n's namespace."""
        url, hdrs = self.signed("GET", key, self.nodes[n].url, **kw)
        return run_in_ns(self.ns(n), request, "GET", url, hdrs, timeout=90)

    def put_origin(self, key, data):
        url, hdrs = self.signed("PUT", key, self.origin.url)
        r = run_in_ns(self.ns("or"), request, "PUT", url, hdrs, body=data)
        assert r.status == 200, (key, r.status, r.body)


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    members = {n: IP[n] for n in NODES}
    members["or"] = IP["or"]
    net = Net("lc%d" % (os.getpid() % 100000), members)
    with net:
        origin = Origin(tmp / "origin", bind=IP["or"], port=7480, mon_port=3300,
                        netns=net.ns("or"), mem_gib=3)
        origin.start()
        c = Cluster(tmp, net, origin, os.urandom(24).hex().encode())
        c.secret_path = str(tmp / "cluster-secret")
        with open(c.secret_path, "wb") as f:
            f.write(c.secret + b"\n")
        try:
            run_in_ns(net.ns("or"), origin.create_bucket, BUCKET)
            c.bob = origin.create_user("bob")
            run_in_ns(net.ns("or"), origin.set_bucket_policy, BUCKET,
                      Origin.policy_allow("bob", BUCKET, "pub/"))
            for n in NODES:
                c.make_node(n).start()
            wait_for("all three nodes see each other up", c.converged, timeout=20)
            yield c
        finally:
            for d in c.nodes.values():
                d.stop()
            origin.stop()


def upload(cl, items):
    """items: {key: size}; random bytes, four uploads at a time."""
    def one(key, size):
        in_ns(cl.ns("or"))
        data = os.urandom(size)
        cl.put_origin(key, data)
        return key, size, hashlib.sha256(data).hexdigest()

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for key, size, sha in ex.map(lambda kv: one(*kv), items.items()):
            cl.objects[key] = (size, sha)


def origin_gets(cl, key, since):
    return cl.origin.log_requests(since, "GET", "/%s/%s" % (BUCKET, key))


def assert_bytes(cl, key, r):
    size, sha = cl.objects[key]
    assert r.status == 200, (key, r.status, r.body)
    assert (r.length, r.sha256) == (size, sha), key


def test_each_object_once_per_cluster(cl):
    keys = ["obj-%02d" % i for i in range(N_OBJECTS)]
    sizes = {k: 8 * MiB + i * (24 * MiB // (N_OBJECTS - 1)) + 7 * i for i, k in enumerate(keys)}
    owners = {k: cl.owner(k) for k in keys}
    owned = {n: sum(o == n for o in owners.values()) for n in NODES}
    assert all(owned[n] >= 3 for n in NODES), owned  # the names spread over all three
    # what each node's store holds at the end: the chunks of the keys it owns
    held = {n: sum(chunks(sizes[k]) for k in keys if owners[k] == n) for n in NODES}
    upload(cl, sizes)
    before = {n: cl.nodes[n].metrics() for n in NODES}
    mark = cl.origin.log_mark()
    t0 = time.monotonic()
    rate = {}  # MB/s by kind of read
    for i, n in enumerate(NODES):
        for k in keys:
            t = time.monotonic()
            assert_bytes(cl, k, cl.read(n, k))
            kind = ("fill" if i == 0 else "hit") + ("" if owners[k] == n else " via owner")
            rate.setdefault(kind, []).append(sizes[k] / (time.monotonic() - t) / 1e6)
    elapsed = time.monotonic() - t0
    # Commits run on each owner's commit thread after its clients have their bytes.
    end = time.monotonic() + 30
    while time.monotonic() < end:
        after = {n: cl.nodes[n].metrics() for n in NODES}
        if all(after[n]["cache_fills_committed"] - before[n].get("cache_fills_committed", 0)
               >= held[n] for n in NODES):
            break
        time.sleep(0.1)

    for k in keys:
        gets = origin_gets(cl, k, mark)
        statuses = sorted(g.status for g in gets)
        # each read is authorized at the origin by the owner; only the first gets a body
        assert statuses == [200, 304, 304], (k, owners[k], [g.line for g in gets])
        assert sum(g.bytes for g in gets if g.status == 200) == sizes[k], k
    for n in NODES:
        d = {m: after[n].get(m, 0) - before[n].get(m, 0) for m in after[n]}
        # n forwards every key it does not own, on each of its 20 reads
        assert d["peer_requests_sent"] == N_OBJECTS - owned[n], (n, d)
        # and serves its own keys for the two other nodes' rounds
        assert d["peer_requests_served"] == 2 * owned[n], (n, d)
        assert d["peer_fallbacks"] == 0, (n, d)
        assert after[n]["cache_entries"] == held[n], (n, after[n])
        assert d["cache_fills_committed"] == held[n], (n, d)
    print("\n3 x %d objects (%d MiB) through 3 nodes in %.1fs; owned %s; median MB/s %s" % (
        N_OBJECTS, sum(sizes.values()) // MiB, elapsed, owned,
        {k: round(sorted(v)[len(v) // 2]) for k, v in rate.items()}))


def test_herd_across_nodes_one_fill(cl):
    key = "herd"
    upload(cl, {key: 32 * MiB})
    mark = cl.origin.log_mark()
    clients = [NODES[i % 3] for i in range(24)]
    reqs = [(n,) + cl.signed("GET", key, cl.nodes[n].url) for n in clients]
    start = threading.Barrier(len(reqs))

    def one(n, url, hdrs):
        in_ns(cl.ns(n))
        start.wait(10)
        return request("GET", url, hdrs, timeout=90)

    with concurrent.futures.ThreadPoolExecutor(len(reqs)) as ex:
        results = list(ex.map(lambda r: one(*r), reqs))
    for r in results:
        assert_bytes(cl, key, r)
    gets = origin_gets(cl, key, mark)
    bodies = [g for g in gets if g.status == 200]
    assert len(bodies) == 1 and bodies[0].bytes == 32 * MiB, [g.line for g in gets]
    assert all(g.status in (200, 304) for g in gets), [g.line for g in gets]
    owner = cl.owner(key)
    assert cl.metric(owner, "cache_entries") >= 1


def test_owner_killed_then_rejoins(cl):
    victim = "n3"
    key = next(k for k in sorted(cl.objects) if k.startswith("obj-") and cl.owner(k) == victim)
    others = [n for n in NODES if n != victim]
    fb0 = {n: cl.metric(n, "peer_fallbacks") for n in others}
    mc0 = {n: cl.metric(n, "membership_changes") for n in others}
    mark = cl.origin.log_mark()

    cl.nodes[victim].kill9()
    t_kill = time.monotonic()
    for n in others:  # at once: probes have not noticed yet, the forward fails first
        assert_bytes(cl, key, cl.read(n, key))
    fb = {n: cl.metric(n, "peer_fallbacks") - fb0[n] for n in others}
    assert sum(fb.values()) >= 1, fb
    gets = origin_gets(cl, key, mark)
    assert any(g.status == 200 and g.bytes == cl.objects[key][0] for g in gets), \
        [g.line for g in gets]
    for n in others:
        wait_for("%s marks %s down" % (n, victim),
                 lambda: cl.states(n)[PEER_ID[victim]] != "up", timeout=10)
    # with the owner down, its keys still read right, from the survivors
    for n in others:
        for k in sorted(cl.objects)[:4]:
            assert_bytes(cl, k, cl.read(n, k))
    down_s = time.monotonic() - t_kill

    cl.nodes[victim].start()
    t_up = time.monotonic()
    for n in others:
        wait_for("%s sees %s up again" % (n, victim),
                 lambda: cl.states(n)[PEER_ID[victim]] == "up", timeout=30, every=0.25)
    rejoin_s = time.monotonic() - t_up
    for n in others:
        assert cl.metric(n, "membership_changes") >= mc0[n] + 2, n

    mark = cl.origin.log_mark()
    sent0 = {n: cl.metric(n, "peer_requests_sent") for n in others}
    served0 = cl.metric(victim, "peer_requests_served")
    for n in others:
        assert_bytes(cl, key, cl.read(n, key))
    assert all(cl.metric(n, "peer_requests_sent") == sent0[n] + 1 for n in others)
    assert cl.metric(victim, "peer_requests_served") == served0 + 2
    # the restarted owner kept its committed copy: the origin only validated it
    gets = origin_gets(cl, key, mark)
    assert [g.status for g in gets] == [304, 304], [g.line for g in gets]
    print("\nkilled %s: survivors served for %.1fs, rejoined %.1fs after restart" % (
        victim, down_s, rejoin_s))


def test_peer_port_refuses_forgeries_and_keeps_origin_authz(cl):
    key = "priv/secret"
    upload(cl, {key: 6 * MiB, "pub/open": 5 * MiB})
    owner = cl.owner(key)
    sender = next(n for n in NODES if n != owner)
    peer_url = "http://%s" % PEER_ID[owner]
    # the object is in the owner's cache: a refusal below is not just an empty cache
    assert_bytes(cl, key, cl.read(sender, key))
    assert cl.metric(owner, "cache_entries") >= 1

    def send(url, hdrs, extra, method="GET", body=None):
        h = as_sent(url, hdrs, body)
        if extra is not None:
            h["x-lota-peer"] = extra
        return run_in_ns(cl.ns(sender), request, method, url, h, body=body, keep_body=True)

    def sign(url, hdrs, method="GET", body=None, **kw):
        return peer_header(cl.secret, method, url[len(peer_url):], as_sent(url, hdrs, body),
                           PEER_ID[sender], **kw)

    def refused(r, what):
        assert r.status == 403 and r.headers.get("x-lota-peer-refused") == "1", (what, r.status)
        assert len(r.body) < 1024, what

    url, hdrs = cl.signed("GET", key, peer_url)
    target = url[len(peer_url):]
    host = as_sent(url, hdrs)["Host"]
    refused0 = cl.metric(owner, "peer_refused")
    replayed0 = cl.metric(owner, "peer_replayed")
    now = int(time.time())
    forged = {
        "none": None,
        "wrong key": peer_header(b"not-the-cluster-secret!!", "GET", target,
                                 as_sent(url, hdrs), PEER_ID[sender]),
        "other target": peer_header(cl.secret, "GET", "/%s/pub/open" % BUCKET,
                                    as_sent(url, hdrs), PEER_ID[sender]),
        "stale": sign(url, hdrs, ts=now - 600),
        "outside the window (inside the old 60 s one)": sign(url, hdrs, ts=now - 30),
        "from the future": sign(url, hdrs, ts=now + 30),
        "old-style v1, correctly signed": peer_header_v1(cl.secret, "GET", target, host,
                                                        PEER_ID[sender]),
        "garbage": "v2 node=x,ts=1,nonce=00,sig=zz",
    }
    for what, value in forged.items():
        refused(send(url, hdrs, value), what)

    # a correctly signed peer request is served as the original client's own request, once
    value = sign(url, hdrs)
    assert_bytes(cl, key, send(url, hdrs, value))
    refused(send(url, hdrs, value), "the same header replayed")
    assert cl.metric(owner, "peer_replayed") == replayed0 + 1

    # a fresh, unspent header moved onto other credentials or another Range is refused;
    # the same header on the request it was made for is then still good
    _, bob_hdrs = cl.signed("GET", key, peer_url, access=cl.bob[0])
    other_auth = dict(as_sent(url, hdrs), Authorization=bob_hdrs["Authorization"])
    other_range = dict(as_sent(url, hdrs), Range="bytes=0-99")
    for what, moved in {"another Authorization": other_auth,
                        "another Range": other_range}.items():
        value = sign(url, hdrs)
        refused(send(url, moved, value), what)
        assert_bytes(cl, key, send(url, hdrs, value))

    # two signatures on one request, both good: refused
    def raw(head):
        s = socket.create_connection((IP[owner], PEER_PORT), timeout=10)
        try:
            s.sendall(head.encode())
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            return data
        finally:
            s.close()

    lines = "".join("%s: %s\r\n" % kv for kv in as_sent(url, hdrs).items())
    head = "GET %s HTTP/1.1\r\n%sx-lota-peer: %s\r\nx-lota-peer: %s\r\n\r\n" % (
        target, lines, sign(url, hdrs), sign(url, hdrs))
    answer = run_in_ns(cl.ns(sender), raw, head)
    assert answer.startswith(b"HTTP/1.1 403 ") and b"\r\nx-lota-peer-refused: 1\r\n" in answer, \
        answer[:300]
    assert cl.metric(owner, "peer_refused") == refused0 + len(forged) + 4

    mark = cl.origin.log_mark()
    served0 = cl.metric(owner, "cache_bytes_served")
    for what, (access, secret) in {"bob (policy denies)": cl.bob,
                                   "wrong client secret": (cl.origin.access_key,
                                                           "wrong-secret-key")}.items():
        url, hdrs = cl.signed("GET", key, peer_url, access=access, secret=secret)
        r = send(url, hdrs, sign(url, hdrs))
        assert r.status == 403 and "x-lota-peer-refused" not in r.headers, (what, r.status)
        assert b"<Error>" in r.body and len(r.body) < 4096, (what, r.body[:200])
    assert cl.metric(owner, "cache_bytes_served") == served0  # not one cached byte
    gets = origin_gets(cl, key, mark)
    assert [g.status for g in gets] == [403, 403], [g.line for g in gets]

    # bob may read pub/ through any node
    assert_bytes(cl, "pub/open", cl.read(sender, "pub/open", access=cl.bob[0]))

    # the peer port serves object reads only, however well signed
    mark = cl.origin.log_mark()
    url, hdrs = cl.signed("PUT", key, peer_url)
    body = b"x" * 100
    r = send(url, hdrs, sign(url, hdrs, method="PUT", body=body), method="PUT", body=body)
    assert r.status == 403 and "x-lota-peer-refused" not in r.headers, (r.status, r.body)
    assert not cl.origin.log_requests(mark, "PUT"), "a peer-port PUT reached the origin"
    # and a client may not send the peer header to a client port (no second hop)
    url, hdrs = cl.signed("GET", key, cl.nodes[sender].url)
    hdrs["x-lota-peer"] = peer_header(cl.secret, "GET", target, as_sent(url, hdrs),
                                      PEER_ID[sender])
    r = run_in_ns(cl.ns(sender), request, "GET", url, hdrs, keep_body=True)
    assert r.status == 400, (r.status, r.body)


@pytest.mark.parametrize("stem", ["inv-", "inv a+b&c=d%25/\u00e9-"])
def test_write_invalidates_on_owner(cl, stem):
    key = next(stem + str(i) for i in range(100) if cl.owner(stem + str(i)) == "n3")
    upload(cl, {key: 5 * MiB})
    assert_bytes(cl, key, cl.read("n1", key))  # cached on n3
    inv0 = cl.metric("n3", "cache_invalidations")
    new = os.urandom(7 * MiB + 3)
    url, hdrs = cl.signed("PUT", key, cl.nodes["n2"].url)
    r = run_in_ns(cl.ns("n2"), request, "PUT", url, hdrs, body=new)
    assert r.status == 200, (r.status, r.body)
    cl.objects[key] = (len(new), hashlib.sha256(new).hexdigest())
    wait_for("n3 drops the key written through n2",
             lambda: cl.metric("n3", "cache_invalidations") > inv0, timeout=5, every=0.05)
    assert_bytes(cl, key, cl.read("n1", key))


def test_frozen_owner_hands_reads_back(cl):
    """An owner that stops answering (SIGSTOP: its sockets stay open, so connects still
    succeed) costs a forwarded read about the probes' time to notice, not the origin
    timeout: the waiting forward re-checks the owner every second."""
    victim = "n2"
    key = next(k for k in ("frozen-%d" % i for i in range(100)) if cl.owner(k) == victim)
    upload(cl, {key: 5 * MiB})
    fb0 = cl.metric("n1", "peer_fallbacks")
    os.kill(cl.nodes[victim].proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert_bytes(cl, key, cl.read("n1", key))
        took = time.monotonic() - t0
    finally:
        os.kill(cl.nodes[victim].proc.pid, signal.SIGCONT)
    print(f"\nfrozen owner: the read took {took:.1f}s")
    assert took < 10, took  # the origin timeout is 30 s
    assert cl.metric("n1", "peer_fallbacks") >= fb0 + 1
    wait_for("n1 sees n2 up again", lambda: cl.states("n1")[PEER_ID[victim]] == "up",
             timeout=60, every=0.25)


def test_range_read_through_a_non_owner(cl):
    """A client's signed Range goes to the owner intact; once the owner holds the object,
    it slices the range from its cache (origin: 304, no body), whichever node asked."""
    owner = "n3"
    key = next(k for k in ("range-%d" % i for i in range(100)) if cl.owner(k) == owner)
    upload(cl, {key: 6 * MiB})
    cl.read(owner, key)  # the owner fills it
    wait_for("the owner commits", lambda: cl.metric(owner, "cache_fills_committed") >= 1)
    mark = cl.origin.log_mark()
    for n in ("n1", "n2"):
        r = cl.read(n, key, headers={"Range": "bytes=1000-1999"})
        assert r.status == 206, (r.status, r.body)
        assert r.headers["content-range"] == "bytes 1000-1999/%d" % (6 * MiB)
        assert r.length == 1000
        assert r.headers.get("x-lota-cache") == "hit"
    gets = origin_gets(cl, key, mark)
    assert [g.status for g in gets] == [304, 304], [g.line for g in gets]


class CutRelay:
    """A TCP relay in namespace ns from listen to target (HOST, PORT pairs), in front of
    a node's peer port, for one fault: once armed, the next request head that arrives on
    a connection that already carried one (a kept-alive connection being reused) reaches
    the node, but the node's answer is swallowed and both connections closed, as if the
    connection had died under the request after the node took it."""

    def __init__(self, ns, listen, target):
        self.ns, self.listen, self.target = ns, listen, target
        self.armed = False
        self.cuts = 0
        self.socks = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()
        assert self.ready.wait(5), "relay did not start"

    def _accept(self):
        in_ns(self.ns)
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(self.listen)
        ls.listen(64)
        self.socks.append(ls)
        self.ready.set()
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            self.socks.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        in_ns(self.ns)
        answered = threading.Event()
        swallow = threading.Event()
        try:
            up = socket.create_connection(self.target, timeout=10)
        except OSError:
            c.close()
            return
        self.socks.append(up)

        def back():
            try:
                while True:
                    b = up.recv(65536)
                    if not b:
                        break
                    if swallow.is_set():
                        answered.set()
                        return
                    c.sendall(b)
            except OSError:
                pass
            try:
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=back, daemon=True).start()
        heads = 0
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                with self.lock:
                    cut = self.armed and heads >= 1
                    if cut:
                        self.armed = False
                if cut:
                    swallow.set()
                    up.sendall(b)
                    answered.wait(10)
                    self.cuts += 1
                    break
                heads += b.count(b"\r\n\r\n")
                up.sendall(b)
        except OSError:
            pass
        for s in (c, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


def test_resend_on_fresh_connection_is_signed_anew(cl):
    """A forward on a kept-alive peer connection that dies after the owner took the head
    is sent again on a fresh connection (upstream.c retry_on_fresh_connection). The owner
    has seen that nonce: the resend must carry a new signature, or it is refused as a
    replay and the read falls back to the sender. Two extra nodes in n1's namespace; the
    owner's id names a relay in front of its real peer port."""
    ip = IP["n1"]
    ida, idb = "%s:8181" % ip, "%s:8281" % ip
    peers = "%s,%s" % (ida, idb)
    common = dict(netns=cl.ns("n1"), peers=peers, cluster_secret=cl.secret_path, workers=1,
                  origin_timeout=30)
    relay = CutRelay(cl.ns("n1"), (ip, 8281), (ip, 8282))
    a = NsLotad(cl.tmp / "resend-a", cl.origin.url, config={"self": ida},
                listen="%s:8180" % ip, admin="%s:9190" % ip, peer_listen=ida, **common)
    b = NsLotad(cl.tmp / "resend-b", cl.origin.url, config={"self": idb},
                listen="%s:8280" % ip, admin="%s:9290" % ip, peer_listen="%s:8282" % ip,
                **common)
    key = next(k for k in ("resend-%d" % i for i in range(100))
               if hrw_owner([ida, idb], BUCKET, k) == idb)
    upload(cl, {key: 5 * MiB})
    size, sha = cl.objects[key]
    try:
        b.start()
        a.start()
        wait_for("a sees b up through the relay",
                 lambda: {m["id"]: m["state"] for m in json.loads(a.get("/admin/peers"))
                          ["members"]}.get(idb) == "up", timeout=20)

        def two_reads():
            """Two reads of key on one client connection to a: a forwards both on one
            kept-alive connection to b, unless it had to open another."""
            conn = http.client.HTTPConnection(ip, 8180, timeout=60)
            out = []
            try:
                for i in range(2):
                    url, hdrs = cl.signed("GET", key, a.url)
                    relay.armed = i == 1  # before the head goes: the relay must see it armed
                    conn.putrequest("GET", url[len(a.url):], skip_host=True,
                                    skip_accept_encoding=True)
                    for k, v in as_sent(url, hdrs).items():
                        conn.putheader(k, v)
                    conn.endheaders()
                    r = conn.getresponse()
                    body = r.read()
                    out.append((r.status, len(body), hashlib.sha256(body).hexdigest()))
            finally:
                conn.close()
            return out

        before = {"a": a.metrics(), "b": b.metrics()}
        results = run_in_ns(cl.ns("n1"), two_reads)
        after = {"a": a.metrics(), "b": b.metrics()}
        d = {n: {m: after[n].get(m, 0) - before[n].get(m, 0) for m in after[n]}
             for n in after}
        assert results == [(200, size, sha)] * 2, results
        assert relay.cuts == 1  # the second forward's connection died after b took it
        assert d["a"]["origin_retries"] == 1, d["a"]
        # b took the first head, then the resend under its own nonce: no replay, no
        # fallback to a
        assert d["b"]["peer_replayed"] == 0 and d["b"]["peer_refused"] == 0, d["b"]
        assert d["b"]["peer_requests_served"] == 3, d["b"]
        assert d["a"]["peer_requests_sent"] == 2 and d["a"]["peer_fallbacks"] == 0, d["a"]
    finally:
        relay.close()
        a.stop()
        b.stop()
