"""lotad steering real S3 clients with its own BPF programs, in network namespaces (root).

  node netns: veth n0 198.18.5.1/30, lotad listening there (:8080, the steer-to
              address), in the test cgroup; VIP 198.18.6.1/32 with a plain HTTP
              listener on VIP:80 ("vip-listener"); ORIGIN_VIP 198.18.6.2/32 with radosgw
              on ORIGIN_VIP:80 (run outside the cgroup). lotad resolves cwlota.com to the
              VIP through a private hosts file (host = cwlota.com, evdns).
  pod netns:  veth p0 198.18.5.2/30, routes to the two VIPs only; no default route.

Clients are unmodified /usr/bin/aws and curl --aws-sigv4 against http://cwlota.com, with
a private hosts file mapping cwlota.com to the VIP, run in the pod namespace and (unless
a test says not) the test cgroup, the only cgroup BPF is attached to. Every address is
inside namespaces this test creates: a failed redirect can never leave the machine."""
import hashlib
import json
import os
import subprocess
import time
import uuid

import pytest

import clients
from netns import (PY, NodeLotad, Topology, enter, join_cgroup, ns, remove_pins, sh, spawn,
                   wait_port)
from origin import Origin

TAG = uuid.uuid4().hex[:6]
NODE_IP, POD_IP = "198.18.5.1", "198.18.5.2"
VIP, ORIGIN_VIP = "198.18.6.1", "198.18.6.2"
LISTEN = NODE_IP + ":8080"
PIN_DIR = "/sys/fs/bpf/lota-lotad-%s-%d" % (TAG, os.getpid())
HOST = "cwlota.com"
BUCKET = "steer"
MiB = 1 << 20
SIZES = [1, 4096, MiB, 64 * MiB]
VIP_BODY = "vip-listener"


class Env:
    pass


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    assert os.geteuid() == 0, "steering tests need root"
    work = tmp_path_factory.mktemp("lotad-steer")
    with Topology(TAG, NODE_IP, POD_IP, [VIP, ORIGIN_VIP], prefix="lotad") as t:
        t.on_exit(lambda: remove_pins(PIN_DIR))
        root = work / "vip"
        root.mkdir()
        (root / "index.html").write_text(VIP_BODY)
        t.keep(spawn(t.node, None, [PY, "-m", "http.server", "--bind", VIP, "80",
                                    "--directory", str(root)], wait_for=None,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        o = Origin(work / "origin", port=80, bind=ORIGIN_VIP, mon_port=3300, netns=t.node)
        t.on_exit(o.stop)
        o.start()
        wait_port(t.node, VIP, 80)
        e = Env()
        e.topo, e.origin, e.work, e.cgroup = t, o, work, t.cgroup
        e.hosts = {ip: hosts_file(work, ip) for ip in (VIP, ORIGIN_VIP)}
        e.aws_env = clients.aws_env(o.access_key, o.secret_key, workdir=str(work))
        r = ns(t.node, *curl_cmd(e, ["-X", "PUT"], "http://%s/%s" % (ORIGIN_VIP, BUCKET)),
               check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        yield e


def hosts_file(work, ip):
    path = work / ("hosts-" + ip)
    path.write_text("127.0.0.1 localhost\n%s %s\n" % (ip, HOST))
    return str(path)


def curl_cmd(e, extra, url):
    return ["curl", "-sS", "--fail-with-body", "--max-time", "120",
            "--aws-sigv4", "aws:amz:%s:s3" % clients.REGION,
            "--user", "%s:%s" % (e.origin.access_key, e.origin.secret_key),
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *extra, url]


def pod(e, cmd, in_cgroup=True, vip=VIP, env=None, check=True):
    """Runs cmd in the pod namespace (and the test cgroup), cwlota.com resolving to vip."""
    full = enter(e.topo.pod) + ["unshare", "-m", "--propagation", "private", "sh", "-c",
                                'mount --bind "$0" /etc/hosts && exec "$@"',
                                e.hosts[vip], *cmd]
    r = subprocess.run(full, env=env, capture_output=True, text=True, timeout=180,
                       preexec_fn=join_cgroup(e.cgroup if in_cgroup else None))
    if check:
        assert r.returncode == 0, (cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def aws(e, *args, vip=VIP):
    return pod(e, [clients.AWS, "--endpoint-url", "http://" + HOST, *args], vip=vip,
               env=e.aws_env)


def curl(e, extra, key="", in_cgroup=True, vip=VIP, check=True):
    url = "http://%s/%s" % (HOST, BUCKET + "/" + key if key else "")
    return pod(e, curl_cmd(e, extra, url), in_cgroup=in_cgroup, vip=vip, check=check)


def plain_get(e, in_cgroup=True):
    """GET / with no signature: the VIP's own listener says VIP_BODY, lotad relays
    radosgw's answer."""
    return pod(e, ["curl", "-sS", "--max-time", "10", "http://%s/" % HOST],
               in_cgroup=in_cgroup, check=False).stdout


def rand_file(path, n):
    with open(path, "wb") as f:
        left = n
        while left:
            f.write(os.urandom(min(left, 8 * MiB)))
            left -= min(left, 8 * MiB)
    return str(path)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(4 * MiB), b""):
            h.update(b)
    return h.hexdigest()


def headers(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.partition(":")
            if sep:
                out[k.strip().lower()] = v.strip()
    return out


def start_lotad(e, name, hosts=None, **cfg):
    conf = dict(listen=LISTEN, admin="127.0.0.1:9090", bpf="on", cgroup=e.cgroup,
                bpf_pin_dir=PIN_DIR, host=HOST, workers=2)
    conf.update(cfg)
    d = NodeLotad(e.work / name, "http://%s:80" % ORIGIN_VIP, e.topo,
                  hosts or {HOST: VIP}, **conf)
    d.start()
    wait_targets(d, 1 + bool(cfg.get("targets")))
    return d


def wait_targets(d, n):
    # host names are resolved asynchronously on the control thread
    for _ in range(100):
        m = d.metrics()
        if m["bpf_attached"] == 1 and m["bpf_targets"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError("lotad never had %d targets: %s\n%s" % (n, m, d.log_tail()))


def delta(after, before, *names):
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def put_get_twice_aws(e, key, size, vip=VIP):
    """aws s3api put-object, then get-object twice; both bodies byte-exact."""
    src = rand_file(e.work / (key.replace("/", "_") + ".src"), size)
    aws(e, "s3api", "put-object", "--bucket", BUCKET, "--key", key, "--body", src, vip=vip)
    for i in range(2):
        out = str(e.work / ("%s.%d" % (key.replace("/", "_"), i)))
        aws(e, "s3api", "get-object", "--bucket", BUCKET, "--key", key, out, vip=vip)
        assert digest(out) == digest(src), (key, i)


def put_get_twice_curl(e, key, size):
    """curl PUT (-T), then GET twice; returns the x-lota-cache header of each GET."""
    base = str(e.work / key.replace("/", "_"))
    src = rand_file(base + ".src", size)
    curl(e, ["-T", src, "-o", "/dev/null"], key)
    seen = []
    for i in range(2):
        curl(e, ["-D", "%s.h%d" % (base, i), "-o", "%s.%d" % (base, i)], key)
        assert digest("%s.%d" % (base, i)) == digest(src), (key, size, i)
        seen.append(headers("%s.h%d" % (base, i)).get("x-lota-cache"))
    return seen


def origin_gets(e, key, since):
    return [(r.status, r.bytes) for r in
            e.origin.log_requests(since, "GET", "/%s/%s" % (BUCKET, key))]


@pytest.mark.parametrize("sockmap", ["off", "on"])
def test_aws_and_curl_served_by_lotad(env, sockmap):
    d = start_lotad(env, "clients-" + sockmap, sockmap=sockmap)
    try:
        m0 = d.metrics()
        mark = env.origin.log_mark()
        key = "aws-%s.bin" % sockmap
        put_get_twice_aws(env, key, 6 * MiB + 123)
        # the second GET: the origin confirmed the ETag (304, no body), lotad served it
        assert origin_gets(env, key, mark) == [(200, 6 * MiB + 123), (304, 0)]
        seen = put_get_twice_curl(env, "curl-%s.bin" % sockmap, 5 * MiB + 7)
        assert seen[1] == "hit", seen
        m = delta(d.metrics(), m0, "bpf_rewritten", "requests_total", "cache_hits",
                  "cache_coalesced", "cache_misses", "bpf_skipped_own", "bpf_inserted",
                  "bpf_redirected")
        # 6 client processes, one connection each at least
        assert m["bpf_rewritten"] >= 6, m
        assert m["requests_total"] >= 6, m
        assert m["cache_hits"] + m["cache_coalesced"] == 2, m
        assert m["cache_misses"] == 2, m
        assert m["bpf_skipped_own"] == 0, m  # the origin is not a target here
        if sockmap == "on":
            assert m["bpf_inserted"] >= 2 * m["bpf_rewritten"] and m["bpf_redirected"] > 0, m
        else:
            assert m["bpf_inserted"] == 0, m
    finally:
        d.stop()


def test_outside_cgroup_not_steered(env):
    d = start_lotad(env, "outside")
    try:
        m0 = d.metrics()
        assert plain_get(env, in_cgroup=False) == VIP_BODY
        m1 = d.metrics()
        assert delta(m1, m0, "bpf_rewritten", "requests_total") == {
            "bpf_rewritten": 0, "requests_total": 0}
        got = plain_get(env, in_cgroup=True)
        assert VIP_BODY not in got and "ListAllMyBucketsResult" in got, got
        assert delta(d.metrics(), m1, "bpf_rewritten", "requests_total") == {
            "bpf_rewritten": 1, "requests_total": 1}
    finally:
        d.stop()


def test_kill9_fails_open_and_restart_steers_again(env):
    d = start_lotad(env, "failopen")
    try:
        assert "ListAllMyBucketsResult" in plain_get(env)
        d.kill9()
        # no cleanup ran: the pins stay, the links died with the process
        assert os.path.exists(PIN_DIR + "/targets")
        assert plain_get(env) == VIP_BODY
        d.start()  # replaces the stale pins
        wait_targets(d, 1)
        assert "ListAllMyBucketsResult" in plain_get(env)
        assert d.metrics()["bpf_rewritten"] == 1
        seen = put_get_twice_curl(env, "restart.bin", 4 * MiB)
        assert seen[1] == "hit", seen
    finally:
        d.stop()
    assert not os.path.exists(PIN_DIR)
    assert plain_get(env) == VIP_BODY


def test_no_loop_when_the_origin_is_a_target(env):
    """cwlota.com is the origin's own address: ORIGIN_VIP:80 is a target, and lotad's
    origin connections to it are left alone (skipped_own) instead of looping back."""
    d = start_lotad(env, "noloop", targets="%s:80" % ORIGIN_VIP)
    try:
        m0 = d.metrics()
        mark = env.origin.log_mark()
        put_get_twice_aws(env, "noloop.bin", 4 * MiB + 1, vip=ORIGIN_VIP)
        m = delta(d.metrics(), m0, "bpf_rewritten", "bpf_skipped_own", "requests_total",
                  "origin_requests", "origin_errors", "cache_hits", "responses_5xx")
        assert m["bpf_rewritten"] >= 3 and m["bpf_skipped_own"] >= 1, m
        assert m["origin_requests"] >= 3 and m["origin_errors"] == 0, m
        assert m["cache_hits"] == 1 and m["responses_5xx"] == 0, m
        assert origin_gets(env, "noloop.bin", mark) == [(200, 4 * MiB + 1), (304, 0)]
        # and outside the cgroup, the origin's address is the origin itself
        before = d.metrics()
        r = pod(env, ["curl", "-sS", "http://%s/" % HOST], in_cgroup=False, vip=ORIGIN_VIP)
        assert "ListAllMyBucketsResult" in r.stdout, r.stdout
        assert delta(d.metrics(), before, "requests_total", "bpf_rewritten") == {
            "requests_total": 0, "bpf_rewritten": 0}
    finally:
        d.stop()


def test_sockmap_byte_exact_sizes(env):
    d = start_lotad(env, "sockmap", sockmap="on")
    try:
        m0 = d.metrics()
        for size in SIZES:
            seen = put_get_twice_curl(env, "sm/%d" % size, size)
            # objects under min-object-size (4 MiB) are relayed, bigger ones hit
            if size >= 4 * MiB:
                assert seen[1] == "hit", (size, seen)
        m = delta(d.metrics(), m0, "bpf_rewritten", "bpf_inserted", "bpf_redirected",
                  "bpf_budget_spent", "cache_hits", "responses_5xx")
        n = 3 * len(SIZES)
        assert m["bpf_rewritten"] == n and m["bpf_inserted"] == 2 * n, m
        assert m["bpf_redirected"] >= n, m
        assert m["bpf_budget_spent"] >= 1, m  # the 64 MiB upload went plain TCP past 1 MiB
        assert m["cache_hits"] == 1 and m["responses_5xx"] == 0, m
    finally:
        d.stop()


def test_bpftool_shows_readable_names(env):
    d = start_lotad(env, "bpftool", sockmap="on")
    try:
        progs = sh("bpftool", "prog", "show").stdout
        for name in ("steer_connect4", "steer_connect6", "steer_sockops", "steer_msg"):
            assert "name " + name in progs, progs[-3000:]
        assert "name steer_targets" in sh("bpftool", "map", "show", "pinned",
                                          PIN_DIR + "/targets").stdout
        # a target added by hand (lotactl targets add) next to the one from DNS
        assert ORIGIN_VIP + ":443" in d.post("/admin/targets?add=%s:443" % ORIGIN_VIP)
        dump = sh("bpftool", "map", "dump", "pinned", PIN_DIR + "/targets").stdout
        for field in ('"addr"', '"port"', '"flags"', '"last_hit_ns"'):
            assert field in dump, dump
        entries = json.loads(sh("bpftool", "-j", "map", "dump", "pinned",
                                PIN_DIR + "/targets").stdout)
        got = {(".".join(map(str, e["formatted"]["key"]["addr"][12:])),
                e["formatted"]["key"]["port"], e["formatted"]["value"]["flags"])
               for e in entries}
        assert got == {(VIP, 80, 0), (ORIGIN_VIP, 443, 1)}, dump
        tree = sh("bpftool", "cgroup", "tree", env.cgroup).stdout
        rows = [line.split() for line in tree.splitlines()]
        for attach, name in (("cgroup_inet4_connect", "steer_connect4"),
                             ("cgroup_inet6_connect", "steer_connect6"),
                             ("cgroup_sock_ops", "steer_sockops")):
            assert any(r[1:2] == [attach] and r[-1] == name for r in rows), tree
    finally:
        d.stop()
