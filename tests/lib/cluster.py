"""A lotad cluster for end-to-end tests: node namespaces on a test bridge, one lotad per
node, and the client-side helpers a cluster test needs (requests made from inside a
namespace, HRW placement computed the way lotad computes it, peer signatures).

Every address lives inside namespaces made here: a "switch" namespace holds the bridge,
each member namespace (nodes, origin) has one veth into it and no default route, so no
packet can leave the machine and the root namespace's interfaces are never touched.

Requests from the test process: a Linux thread may enter another network namespace
(setns(CLONE_NEWNET) is per thread), and the sockets it opens stay in that namespace.
in_ns(name) moves the calling thread; run_in_ns() runs a function on a fresh thread
there, so the caller's own namespace never changes."""

import ctypes
import hashlib
import hmac
import http.client
import os
import subprocess
import threading
import time
import urllib.parse

from lotad import Lotad

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd, check=True, timeout=30):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    return p


def in_ns(name):
    """Moves the calling thread (only) into network namespace name."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (name, os.strerror(e)))
    finally:
        os.close(fd)


def run_in_ns(name, fn, *args, **kw):
    """fn(*args, **kw) on a new thread inside namespace name; returns or raises its result."""
    box = {}

    def body():
        try:
            in_ns(name)
            box["r"] = fn(*args, **kw)
        except BaseException as e:  # handed to the caller
            box["e"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box.get("r")


class Response:
    def __init__(self, status, headers, body=None, sha256=None, length=0):
        self.status = status
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.sha256 = sha256
        self.length = length


def as_sent(url, headers=None, body=None):
    """The header lines request() sends for these arguments, in order: headers, then Host
    and Content-Length where they are missing."""
    hdrs = dict(headers or {})
    if not any(k.lower() == "host" for k in hdrs):
        hdrs["Host"] = urllib.parse.urlsplit(url).netloc
    if body is not None and not any(k.lower() == "content-length" for k in hdrs):
        hdrs["Content-Length"] = str(len(body))
    return hdrs


def request(method, url, headers=None, body=None, timeout=60, keep_body=None):
    """One HTTP/1.1 request from the calling thread's namespace. The body is hashed as it
    streams in (kept only when keep_body, or when it is short)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path + ("?" + u.query if u.query else "")
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in as_sent(url, headers, body).items():
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        h = hashlib.sha256()
        kept = []
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            if keep_body or (keep_body is None and n <= 1 << 16):
                kept.append(chunk)
        keep = keep_body or (keep_body is None and n <= 1 << 16)
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                        b"".join(kept) if keep else None, h.hexdigest(), n)
    finally:
        conn.close()


# -- placement: user/lib/hrw.c in Python ---------------------------------------------------

_M64 = (1 << 64) - 1
HRW_K0 = 0x7277682d61746f6c
HRW_K1 = 0x000000000031762d


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _M64


def _sip_round(v):
    v0, v1, v2, v3 = v
    v0 = (v0 + v1) & _M64
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _M64
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _M64
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _M64
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return [v0, v1, v2, v3]


def _sip(words):
    v = [HRW_K0 ^ 0x736f6d6570736575, HRW_K1 ^ 0x646f72616e646f6d,
         HRW_K0 ^ 0x6c7967656e657261, HRW_K1 ^ 0x7465646279746573]
    for m in words:
        v[3] ^= m
        v = _sip_round(_sip_round(v))
        v[0] ^= m
    v[2] ^= 0xff
    for _ in range(4):
        v = _sip_round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def hrw_hash(data):
    """SipHash-2-4 under lotad's fixed HRW key (hrw_hash in user/lib/hrw.c)."""
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - 7, 8)]
    tail = data[len(data) - len(data) % 8:]
    words.append(int.from_bytes(tail, "little") | (len(data) & 0xff) << 56)
    return _sip(words)


def hrw_pick(kh, node_ids):
    """The member id of node_ids with the highest weight for the key hash kh."""
    best = None
    for nid in node_ids:
        nh = hrw_hash(nid.encode())
        w = _sip([kh, nh, 16 << 56])
        if best is None or (w, nh) > best[0]:
            best = ((w, nh), nid)
    return best[1]


def hrw_owner(node_ids, bucket, key):
    """The member id that owns bucket/key among node_ids (all live)."""
    return hrw_pick(hrw_hash(("%s/%s" % (bucket, key)).encode()), node_ids)


def chunk_owner(node_ids, bucket, key, index, version=""):
    """peers_chunk_owner (user/lotad/cluster/peers.c) in Python: HRW over the placement
    key "bucket/key\0version\0index" (user/lib/hrw.c)."""
    return hrw_pick(hrw_hash(b"%s/%s\0%s\0%d" % (bucket.encode(), key.encode(),
                                                 version.encode(), index)), node_ids)


# -- peer signatures: user/lib/peerauth.c in Python ----------------------------------------

def peer_header(secret, method, target, headers, node, ts=None, nonce=None):
    """The value of x-lota-peer (v2) for a request whose header lines are headers ({name:
    value} or [(name, value)], in the order sent; an x-lota-peer among them does not
    count), signed with secret (bytes): HMAC-SHA256 over method, target, node, time, a
    random nonce and a SHA-256 of the header lines as "name:value\r\n"."""
    ts = str(int(time.time()) if ts is None else ts)
    nonce = (os.urandom(16) if nonce is None else nonce).hex()
    lines = hashlib.sha256()
    for k, v in (headers.items() if isinstance(headers, dict) else headers):
        if k.lower() != "x-lota-peer":
            lines.update(("%s:%s\r\n" % (k, v.strip(" \t"))).encode("latin-1"))
    msg = "lota-peer-v2\n%s\n%s\n%s\n%s\n%s\n%s" % (method, target, node, ts, nonce,
                                                 lines.hexdigest())
    sig = hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()
    return "v2 node=%s,ts=%s,nonce=%s,sig=%s" % (node, ts, nonce, sig)


def peer_header_v1(secret, method, target, host, node, ts=None):
    """The old (v1) value, signed as lotad signed it before: lotad must refuse it."""
    ts = str(int(time.time()) if ts is None else ts)
    msg = "lota-peer-v1\n%s\n%s\n%s\n%s\n%s" % (method, target, host, ts, node)
    sig = hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()
    return "v1 node=%s,ts=%s,sig=%s" % (node, ts, sig)


# -- namespaces ------------------------------------------------------------------------

class Net:
    """A switch namespace with a bridge and member namespaces on it, one veth each.
    members: {name: ip}; all get ip/24 on "eth0". Context manager; removes everything."""

    def __init__(self, prefix, members, subnet_bits=24):
        # The pid keeps two test runs on one machine out of each other's namespaces.
        self.prefix = "%s-%d" % (prefix, os.getpid())
        self.switch = self.prefix + "-sw"
        self.members = {name: ip for name, ip in members.items()}
        self.bits = subnet_bits
        self.made = []

    def ns(self, name):
        return "%s-%s" % (self.prefix, name)

    def __enter__(self):
        try:
            self._add(self.switch)
            self._in(self.switch, "ip", "link", "set", "lo", "up")
            self._in(self.switch, "ip", "link", "add", "br0", "type", "bridge")
            self._in(self.switch, "ip", "link", "set", "br0", "up")
            for i, (name, ip) in enumerate(self.members.items()):
                ns = self.ns(name)
                self._add(ns)
                sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                   "peer", "name", "p%d" % i, "netns", self.switch)
                self._in(self.switch, "ip", "link", "set", "p%d" % i, "master", "br0")
                self._in(self.switch, "ip", "link", "set", "p%d" % i, "up")
                self._in(ns, "ip", "link", "set", "lo", "up")
                self._in(ns, "ip", "addr", "add", "%s/%d" % (ip, self.bits), "dev", "eth0")
                self._in(ns, "ip", "link", "set", "eth0", "up")
                routes = self._in(ns, "ip", "route", "show").stdout
                assert "default" not in routes, routes
        except BaseException:
            self.__exit__()
            raise
        return self

    def _add(self, ns):
        sh("ip", "netns", "add", ns)
        self.made.append(ns)

    @staticmethod
    def _in(ns, *cmd):
        return sh("ip", "netns", "exec", ns, *cmd)

    def __exit__(self, *exc):
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []


class NsLotad(Lotad):
    """lotad started with `ip netns exec NS` (which execs: the pid is lotad's own), its
    admin port inside the namespace and reached from a thread that entered it; /admin/...
    goes to its unix socket, a file that any namespace reaches."""

    def get(self, path, timeout=5):
        if self.via_socket(path):
            return super().get(path, timeout)
        r = run_in_ns(self.netns, request, "GET", self.admin_url + path, timeout=timeout,
                      keep_body=True)
        if r.status != 200:
            raise OSError("GET %s%s: %d" % (self.admin_url, path, r.status))
        return r.body.decode()

    def post(self, path, data=b"", timeout=5):
        if self.via_socket(path):
            return super().post(path, data, timeout)
        r = run_in_ns(self.netns, request, "POST", self.admin_url + path, body=data,
                      timeout=timeout, keep_body=True)
        if r.status != 200:
            raise OSError("POST %s%s: %d" % (self.admin_url, path, r.status))
        return r.body.decode()
