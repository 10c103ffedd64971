"""The NET benchmark's network (net.py): a switch namespace with a bridge, three node
namespaces and an origin namespace, one veth each into the switch, every link shaped with
htb (netem and fq are not in this kernel). Only 198.19.60.0/24 (inside 198.18.0.0/15)
inside namespaces made here, no default route anywhere, names carrying the pid so that two
runs never meet. A context manager: processes it started are stopped by their pid, then
every namespace is deleted, also after a failure or Ctrl-C.

    origin ns ─ eth0 (200 MB/s out) ─┐
    n1 ─ eth0 (600 MB/s out) ────────┤  switch ns: br0, one port per member, each
    n2 ─ eth0 (600 MB/s out) ────────┤  port shaped to the member's rate towards it
    n3 ─ eth0 (600 MB/s out) ────────┘
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import time

SUBNET = "198.19.60."
MEMBERS = {"n1": SUBNET + "1", "n2": SUBNET + "2", "n3": SUBNET + "3", "or": SUBNET + "10"}
NODES = ("n1", "n2", "n3")
MTU = 9000  # jumbo frames, as data-centre links carry: fewer packets for two shared cores
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd, check=True, timeout=30):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return p


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if the benchmark dies without tearing down."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def mbit(bytes_per_s):
    return "%dmbit" % round(bytes_per_s * 8 / 1e6)


def leaf_stats(text):
    """(bytes sent, packets dropped) of the bfifo in `tc -s qdisc show` output."""
    blocks = text.split("qdisc ")
    leaf = next((b for b in blocks if b.startswith("bfifo")), "")
    f = leaf.replace(",", " ").replace("(", " ").split()
    sent = int(f[f.index("Sent") + 1]) if "Sent" in f else 0
    drop = int(f[f.index("dropped") + 1]) if "dropped" in f else 0
    return sent, drop


class Rig:
    def __init__(self, origin_rate, link_rate):
        self.prefix = "lbn%d" % os.getpid()
        self.switch = self.prefix + "-sw"
        self.rates = {m: (origin_rate if m == "or" else link_rate) for m in MEMBERS}
        self.made = []
        self.procs = []
        self.cleanups = []

    def ns(self, member):
        return "%s-%s" % (self.prefix, member)

    def enter(self, member):
        return ["nsenter", "--net=/run/netns/" + self.ns(member)]

    def __enter__(self):
        try:
            self._add(self.switch)
            self._in(self.switch, "ip", "link", "set", "lo", "up")
            self._in(self.switch, "ip", "link", "add", "br0", "mtu", str(MTU), "type", "bridge")
            self._in(self.switch, "ip", "link", "set", "br0", "up")
            for i, (m, ip) in enumerate(MEMBERS.items()):
                self._member(i, m, ip)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _member(self, i, m, ip):
        ns, port = self.ns(m), "p%d" % i
        self._add(ns)
        sh("ip", "link", "add", "eth0", "mtu", str(MTU), "netns", ns, "type", "veth",
           "peer", "name", port, "mtu", str(MTU), "netns", self.switch)
        self._in(self.switch, "ip", "link", "set", port, "master", "br0", "up")
        self._in(ns, "ip", "link", "set", "lo", "up")
        self._in(ns, "ip", "addr", "add", ip + "/24", "dev", "eth0")
        self._in(ns, "ip", "link", "set", "eth0", "up")
        self.shape(ns, "eth0", self.rates[m])  # what the member sends
        self.shape(self.switch, port, self.rates[m])  # what it receives
        routes = self._in(ns, "ip", "route", "show").stdout
        if "default" in routes or any(not r.startswith(SUBNET) for r in routes.splitlines()):
            raise RuntimeError("%s: unexpected routes: %s" % (ns, routes))

    def shape(self, ns, dev, rate):
        """One htb class at rate for everything dev sends, a bounded byte fifo below it
        (about 5 ms at that rate, as a switch port holds: no bufferbloat)."""
        r = mbit(rate)
        self._in(ns, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb",
                 "default", "1")
        self._in(ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:1",
                 "htb", "rate", r, "ceil", r, "burst", "256k", "cburst", "256k",
                 "quantum", "65536")
        self._in(ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1", "bfifo", "limit",
                 str(max(1 << 20, int(rate * 0.005))))

    def _add(self, ns):
        sh("ip", "netns", "add", ns)
        self.made.append(ns)

    @staticmethod
    def _in(ns, *cmd):
        return sh("nsenter", "--net=/run/netns/" + ns, *cmd)

    def spawn(self, member, cmd, ready="ready", **kw):
        """cmd in member's namespace, stopped at teardown; with ready, waits for its first
        stdout line to be that."""
        kw.setdefault("stdout", subprocess.PIPE if ready else subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.enter(member) + list(cmd), text=True,
                             preexec_fn=die_with_parent, **kw)
        self.procs.append(p)
        if ready:
            line = p.stdout.readline()
            if not line.startswith(ready):
                self.stop(p)
                raise RuntimeError("%s did not start: %r %s" % (cmd[0], line, p.stderr.read()))
        return p

    def run(self, member, cmd, timeout, **kw):
        return subprocess.run(self.enter(member) + list(cmd), capture_output=True, text=True,
                              timeout=timeout, preexec_fn=die_with_parent,
                              stdin=subprocess.DEVNULL, **kw)

    def qdisc_stats(self):
        """{(member, "out" | "in"): (bytes sent, packets dropped)} at each shaped fifo."""
        out = {}
        for i, m in enumerate(MEMBERS):
            for way, ns, dev in (("out", self.ns(m), "eth0"), ("in", self.switch, "p%d" % i)):
                text = self._in(ns, "tc", "-s", "qdisc", "show", "dev", dev).stdout
                out[(m, way)] = leaf_stats(text)
        return out

    def on_exit(self, fn):
        self.cleanups.append(fn)

    @staticmethod
    def stop(p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(p)
        for fn in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                fn()
        self.cleanups = []
        for ns in reversed(self.made):
            for _ in range(20):
                if sh("ip", "netns", "del", ns, check=False).returncode == 0:
                    break
                time.sleep(0.1)
        self.made = []
