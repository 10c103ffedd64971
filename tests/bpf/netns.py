"""Network namespaces, a child cgroup and process helpers for the steering tests (root).

A Topology is a "node" and a "pod" network namespace joined by one veth pair, extra
/32 addresses (VIPs) on the node end, a pod whose only routes lead to those VIPs (no
default route: a failed redirect can never leave the machine), and a child cgroup of the
cgroup2 mount that BPF attaches to. Processes enter a namespace with nsenter, not
"ip netns exec": the latter remounts /sys, hiding the cgroup2 and bpffs mounts."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

from lotad import BUILD, Lotad, LotadError  # tests/lib, on sys.path by conftest

PY = "/usr/bin/python3"
STAT_NAMES = ["rewritten", "skipped_own", "map_miss", "inserted", "redirected",
              "redirect_failed", "budget_spent"]


def sh(*cmd, check=True, timeout=60):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    raise RuntimeError("no cgroup2 mount")


def mount_bpffs():
    if not os.path.ismount("/sys/fs/bpf"):
        sh("mount", "-t", "bpf", "bpf", "/sys/fs/bpf")


def enter(name):
    return ["nsenter", "--net=/run/netns/" + name]


def ns(name, *cmd, check=True, timeout=60):
    return sh(*enter(name), *cmd, check=check, timeout=timeout)


def join_cgroup(cg):
    """A preexec_fn that moves the child into cgroup cg (None: stay where it is)."""
    if not cg:
        return None

    def f():
        with open(os.path.join(cg, "cgroup.procs"), "w") as fh:
            fh.write("0")
    return f


def spawn(netns, cg, cmd, wait_for="ready", **kw):
    """Starts cmd in netns (and cgroup cg); with wait_for, its first stdout line must
    start with it."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(enter(netns) + cmd, text=True, preexec_fn=join_cgroup(cg), **kw)
    if wait_for:
        line = p.stdout.readline()
        if not line.startswith(wait_for):
            stop(p)
            raise AssertionError("%s did not start: %r %s" % (cmd[0], line, p.stderr.read()))
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_port(netns, ip, port, tries=100):
    for _ in range(tries):
        if ns(netns, PY, "-c", "import socket; socket.create_connection((%r, %d), 1)"
              % (ip, port), check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError("%s:%d never listened" % (ip, port))


def bpf_stats(pin_dir):
    """The steering counters of the stats map pinned in pin_dir, summed over CPUs."""
    out = sh("bpftool", "-j", "map", "dump", "pinned", pin_dir + "/stats").stdout
    res = {}
    for e in json.loads(out):
        # with BTF, bpftool adds {"formatted": {"key": N, "values": [{"cpu", "value"}]}}
        f = e["formatted"]
        res[STAT_NAMES[f["key"]]] = sum(int(v["value"]) for v in f["values"])
    return res


class Topology:
    """node <-veth-> pod, VIPs on the node end, pod routes to the VIPs only, one child
    cgroup. Use as a context manager; everything it made is removed on exit, and
    processes handed to keep() are stopped first."""

    def __init__(self, tag, node_ip, pod_ip, vips, prefix="lota"):
        self.tag = tag
        # The pid keeps two test runs on one machine out of each other's namespaces.
        self.node = "%s-node-%s-%d" % (prefix, tag, os.getpid())
        self.pod = "%s-pod-%s-%d" % (prefix, tag, os.getpid())
        self.node_ip, self.pod_ip, self.vips = node_ip, pod_ip, list(vips)
        self.cgroup = os.path.join(cgroup2_mount(), "%s-test-%s-%d" % (prefix, tag, os.getpid()))
        self.procs = []
        self.cleanups = []

    def __enter__(self):
        mount_bpffs()
        os.mkdir(self.cgroup)
        sh("ip", "netns", "add", self.node)
        sh("ip", "netns", "add", self.pod)
        try:
            self._wire()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wire(self):
        n0, p0 = "n0" + self.tag, "p0" + self.tag
        sh("ip", "link", "add", n0, "netns", self.node, "type", "veth",
           "peer", "name", p0, "netns", self.pod)
        ns(self.node, "ip", "link", "set", "lo", "up")
        ns(self.pod, "ip", "link", "set", "lo", "up")
        ns(self.node, "ip", "addr", "add", self.node_ip + "/30", "dev", n0)
        for vip in self.vips:
            ns(self.node, "ip", "addr", "add", vip + "/32", "dev", n0)
        ns(self.node, "ip", "link", "set", n0, "up")
        ns(self.pod, "ip", "addr", "add", self.pod_ip + "/30", "dev", p0)
        ns(self.pod, "ip", "link", "set", p0, "up")
        for vip in self.vips:
            ns(self.pod, "ip", "route", "add", vip + "/32", "via", self.node_ip)
        routes = ns(self.pod, "ip", "route", "show").stdout
        assert "default" not in routes, routes

    def keep(self, p):
        self.procs.append(p)
        return p

    def on_exit(self, fn):
        self.cleanups.append(fn)

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            stop(p)
        for fn in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                fn()
        sh("ip", "netns", "del", self.pod, check=False)
        sh("ip", "netns", "del", self.node, check=False)
        for _ in range(50):
            try:
                os.rmdir(self.cgroup)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)


def remove_pins(pin_dir):
    if pin_dir.startswith("/sys/fs/bpf/") and os.path.isdir(pin_dir):
        shutil.rmtree(pin_dir, ignore_errors=True)



class NodeLotad(Lotad):
    """lotad inside a Topology's node namespace and cgroup, with host names from a
    private hosts file (its own mount namespace: the machine's /etc/hosts is never
    touched). The admin address is inside the namespace too: get() and post() go through
    curl there, but for /admin/..., which goes to lotad's unix socket (a file: any
    namespace reaches it). hosts: {name: ip}."""

    def __init__(self, workdir, origin_url, topo, hosts, **cfg):
        super().__init__(workdir, origin_url, **cfg)
        self.topo = topo
        self.hosts = dict(hosts)

    def start(self, timeout=15):
        self.write_config()
        hosts_path = os.path.join(self.workdir, "hosts")
        with open(hosts_path, "w") as f:
            f.write("127.0.0.1 localhost\n")
            for name, ip in self.hosts.items():
                f.write("%s %s\n" % (ip, name))
        # nsenter, unshare and sh all exec: the pid is lotad's own (kill -9 hits it).
        cmd = enter(self.topo.node) + [
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', hosts_path,
            os.path.join(BUILD, "lotad"), "--config", self.conf_path]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=join_cgroup(self.topo.cgroup))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise LotadError("lotad exited %d:\n%s" % (self.proc.returncode,
                                                          self.log_tail()))
            try:
                if self.get("/healthz").strip() == "ok":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise LotadError("lotad not healthy after %ss:\n%s" % (timeout, self.log_tail()))

    def _curl(self, path, extra, timeout):
        r = ns(self.topo.node, "curl", "-sS", "--fail", "--max-time", str(timeout), *extra,
               self.admin_url + path, check=False, timeout=timeout + 5)
        if r.returncode:
            raise OSError("curl %s%s: %s" % (self.admin_url, path, r.stderr.strip()))
        return r.stdout

    def get(self, path, timeout=5):
        if self.via_socket(path):
            return Lotad.get(self, path, timeout)
        return self._curl(path, [], timeout)

    def post(self, path, data=b"", timeout=5):
        if self.via_socket(path):
            return Lotad.post(self, path, data, timeout)
        return self._curl(path, ["-X", "POST", "--data-binary", data.decode()], timeout)
