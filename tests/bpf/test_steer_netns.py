"""Transparent steering with real traffic, in network namespaces (run as root).

  node netns: veth n0 198.18.3.1/30 + VIP 198.18.4.1/32; "origin" HTTP server on VIP:80;
              the steering host (tests/bpf/steer_host.c) serving on
              198.18.3.1:8080, the redirect address
  pod netns:  veth p0 198.18.3.2/30, one route: the VIP via 198.18.3.1; no default route

Both ends of the pair are test-only addresses inside namespaces this test creates, so a
failed redirect can never leave the machine. Programs attach only to a child cgroup of
the cgroup2 mount that this test creates; clients run in it unless a test says not.
The host is started through HOST_CMD so lotad can take its place once it exists: it must
steer VIP:80 to the redirect address, pin under PIN_DIR and answer GET / there with a
body that is not "origin"."""
import os
import subprocess
import uuid

import pytest

from netns import PY, Topology, enter, join_cgroup, ns, remove_pins, spawn, stop, wait_port
from netns import bpf_stats

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LOTA_BUILD", os.path.join(TOP, "build"))
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = uuid.uuid4().hex[:6]
NODE_IP, POD_IP, VIP = "198.18.3.1", "198.18.3.2", "198.18.4.1"
REDIRECT = (NODE_IP, 8080)
DATA_PORT = 8090
PIN_DIR = "/sys/fs/bpf/lota-test-%s-%d" % (TAG, os.getpid())
SIZES = [1, 4096, 1 << 20, 64 << 20]
MODES = ["write", "writev", "sendfile"]
NODE = POD = None  # the namespaces' names, set by the net fixture


@pytest.fixture(scope="module")
def host_bin(tmp_path_factory):
    assert os.geteuid() == 0, "steering tests need root"
    subprocess.run(["make", "-C", TOP, "--no-print-directory",
                    os.path.join(os.path.relpath(BUILD, TOP), "steer.skel.h")],
                   check=True, capture_output=True)
    out = str(tmp_path_factory.mktemp("bin") / "steer_host")
    # Against the loader itself (bpf/steer-loader.c), not the daemon: this test is about
    # steering alone.
    subprocess.run(["cc", "-O2", "-g", "-Wall", "-Werror", "-Wno-unused-parameter",
                    "-D_GNU_SOURCE", "-I" + TOP + "/bpf", "-I" + BUILD,
                    "-o", out, os.path.join(HERE, "steer_host.c"),
                    os.path.join(TOP, "bpf/steer-loader.c"), "-lbpf", "-lelf", "-lz"],
                   check=True)
    return out


@pytest.fixture(scope="module")
def net():
    global NODE, POD
    with Topology(TAG, NODE_IP, POD_IP, [VIP]) as t:
        NODE, POD = t.node, t.pod
        t.on_exit(lambda: remove_pins(PIN_DIR))
        t.keep(spawn(NODE, None, [PY, "-m", "http.server", "--bind", VIP, "80",
                                  "--directory", write_origin_root()], wait_for=None))
        wait_port(NODE, VIP, 80)
        yield {"cgroup": t.cgroup, "procs": t.procs}


def write_origin_root():
    d = "/tmp/lota-origin-" + TAG
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write("origin")
    return d


def host_cmd(host_bin, redirect=REDIRECT, extra=()):
    return [host_bin, "--cgroup", "CG", "--pin-dir", PIN_DIR,
            "--redirect", "%s:%d" % redirect, "--target", "%s:80" % VIP] + list(extra)


def start_host(net, host_bin, redirect=REDIRECT, extra=()):
    cmd = [a if a != "CG" else net["cgroup"] for a in host_cmd(host_bin, redirect, extra)]
    p = spawn(NODE, net["cgroup"], cmd)
    return p


def get(netns, cg, ip, port=80, family="inet"):
    """GET / from inside netns (and cgroup cg, unless None); returns the body."""
    code = ("import socket,sys\n"
            "f = socket.AF_INET6 if %r == 'inet6' else socket.AF_INET\n"
            "s = socket.socket(f); s.settimeout(5); s.connect((%r, %d))\n"
            "s.sendall(b'GET / HTTP/1.0\\r\\nHost: t\\r\\n\\r\\n')\n"
            "b = b''\n"
            "while True:\n"
            "    c = s.recv(65536)\n"
            "    if not c: break\n"
            "    b += c\n"
            "sys.stdout.write(b.split(b'\\r\\n\\r\\n', 1)[1].decode())\n") % (family, ip, port)
    r = subprocess.run(enter(netns) + [PY, "-c", code], capture_output=True,
                       text=True, timeout=30, preexec_fn=join_cgroup(cg) if cg else None)
    return r.stdout if r.returncode == 0 else "error: " + (r.stderr.strip() or "exit %d" % r.returncode).splitlines()[-1]


def stats():
    return bpf_stats(PIN_DIR)


def test_steered_in_cgroup_only(net, host_bin):
    h = start_host(net, host_bin)
    try:
        before = stats()
        assert get(POD, net["cgroup"], VIP) == "steered"
        assert stats()["rewritten"] == before["rewritten"] + 1
        # outside the cgroup: untouched, reaches the VIP itself
        assert get(POD, None, VIP) == "origin"
        assert stats()["rewritten"] == before["rewritten"] + 1
        # another port on the VIP is not a target
        assert get(POD, net["cgroup"], VIP, 81).startswith("error")
        assert stats()["map_miss"] > before["map_miss"]
    finally:
        stop(h)


def test_v4_mapped_ipv6_destination(net, host_bin):
    h = start_host(net, host_bin)
    try:
        before = stats()
        assert get(POD, net["cgroup"], "::ffff:" + VIP, family="inet6") == "steered"
        assert stats()["rewritten"] == before["rewritten"] + 1
    finally:
        stop(h)


def test_fail_open_and_restart(net, host_bin):
    h = start_host(net, host_bin)
    assert get(POD, net["cgroup"], VIP) == "steered"
    h.kill()  # no cleanup: the links die with the process, the pins stay
    h.wait()
    assert os.path.exists(PIN_DIR + "/targets")
    assert get(POD, net["cgroup"], VIP) == "origin"
    h = start_host(net, host_bin)  # replaces the stale pins
    try:
        assert get(POD, net["cgroup"], VIP) == "steered"
    finally:
        stop(h)
    assert not os.path.exists(PIN_DIR)
    assert get(POD, net["cgroup"], VIP) == "origin"


def test_own_connection_not_steered(net, host_bin):
    h = start_host(net, host_bin, extra=["--self-check", "%s:80" % VIP])
    try:
        assert h.stdout.readline().strip() == "self: origin"
        assert stats()["skipped_own"] >= 1
        assert get(POD, net["cgroup"], VIP) == "steered"
    finally:
        stop(h)


def test_pinned_links_outlive_the_host(net, host_bin):
    h = start_host(net, host_bin, extra=["--pin-links", "--no-serve"])
    h.kill()
    h.wait()
    try:
        assert os.path.exists(PIN_DIR + "/link_connect4")
        # still steered to the (now closed) redirect address: refused, not the origin
        assert get(POD, net["cgroup"], VIP).startswith("error")
    finally:
        h = start_host(net, host_bin)  # detaches the pinned links of the dead run
        stop(h)
    assert get(POD, net["cgroup"], VIP) == "origin"


@pytest.fixture(scope="module")
def data_server(net):
    """The transfer peer where lotad would be: node netns, steering cgroup."""
    p = spawn(NODE, net["cgroup"], [PY, os.path.join(HERE, "steer_peer.py"), "server",
                                     NODE_IP, str(DATA_PORT)])
    yield p
    stop(p)


def transfer(net, up, upmode, down, downmode):
    r = subprocess.run(enter(POD) + [PY, os.path.join(HERE, "steer_peer.py"),
                        "client", VIP, "80", str(up), upmode, str(down), downmode],
                       capture_output=True, text=True, timeout=300,
                       preexec_fn=join_cgroup(net["cgroup"]))
    assert r.returncode == 0 and r.stdout.startswith("ok "), (up, upmode, down, downmode,
                                                             r.stdout, r.stderr)
    return float(r.stdout.split()[1])


@pytest.mark.parametrize("budget", [0, 0xffffffff], ids=["budget-default", "budget-unlimited"])
def test_sockmap_byte_exact(net, host_bin, data_server, budget):
    h = start_host(net, host_bin, redirect=(NODE_IP, DATA_PORT),
                   extra=["--sockmap", "--no-serve", "--msg-budget", str(budget)])
    try:
        before = stats()
        for size in SIZES:
            for mode in MODES:
                transfer(net, size, mode, 0, "write")   # pod -> lotad
                transfer(net, 0, "write", size, mode)   # lotad -> pod
        after = stats()
        n = 2 * len(SIZES) * len(MODES)
        assert after["rewritten"] - before["rewritten"] == n
        assert after["inserted"] - before["inserted"] == 2 * n
        assert after["redirected"] > before["redirected"]
        print("sockmap stats", budget, after)
        if budget:
            assert after["budget_spent"] == before["budget_spent"]
        else:
            # each 64 MiB upload (and 1 MiB + header) overran the 1 MiB budget
            assert after["budget_spent"] - before["budget_spent"] >= len(MODES)
    finally:
        stop(h)
