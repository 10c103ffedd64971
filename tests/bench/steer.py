"""Case 8 of the benchmark suite: a pod reaching lotad through BPF steering, sockmap off
vs on (issue 4, "Benchmark"). Root only; everything it makes is removed on the way out.

    node netns  veth n0 198.18.8.1/30; VIP 198.18.9.1/32 (the intercepted address,
                clients dial VIP:80); ORIGIN_VIP 198.18.9.2/32 with a radosgw of its own
                on :80 (outside the cgroups); two lotads, bpf=on, targets=VIP:80:
                "sockmap-off" on 198.18.8.1:8080 in cgroup A, "sockmap-on" on
                198.18.8.1:8081 in cgroup B (sockops only sees lotad's accepted sockets
                when lotad runs inside the cgroup it attached to: tests/bpf/netns.py
                NodeLotad does that).
    pod netns   veth p0 198.18.8.2/30, routes to the two VIPs only (no default route).
    clients     getload and wrk, in the pod netns and in cgroup A or B: the same
                command line, VIP:80 and Host cwlota.com, reaches one lotad or the other
                only through its cgroup's connect4 rewrite.

The two lotads run side by side (each attached to its own sibling child cgroup), so the
rounds alternate off/on without restarts; each has its own warm copy of the object."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import types
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "bpf"))

NODE_IP, POD_IP = "198.18.8.1", "198.18.8.2"
VIP, ORIGIN_VIP = "198.18.9.1", "198.18.9.2"
HOST = "cwlota.com"
BUCKET = "bench"
REGION = "us-east-1"
CASE = "8 steer pod->lotad (BPF)"
SETTINGS = ("off", "on")
COUNTERS = ("rewritten", "inserted", "redirected", "redirect_failed", "budget_spent")
MiB = 1 << 20
GiB = 1 << 30


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def who(setting):
    return "sockmap-" + setting


class SteerCase:
    def __init__(self, bench):
        self.b = bench
        self.res = bench.res
        self.quick = bench.plan.quick
        self.rounds = bench.plan.rounds
        self.hit_reqs = {1: 2, 4: 1} if self.quick else {1: 4, 4: 2}
        self.wrk_secs = 1 if self.quick else 4
        self.wrk_conns = (16, 64)
        self.work = os.path.join(bench.work, "steer")
        os.makedirs(self.work, exist_ok=True)
        self.counters = {s: {c: 0 for c in COUNTERS} for s in SETTINGS}
        self.served = {s: {"requests": 0, "hits": 0, "misses": 0} for s in SETTINGS}

    # ---- the run, inside the topology ---------------------------------------------------

    def run(self):
        from netns import Topology, mount_bpffs, remove_pins, sh

        if os.geteuid() != 0:
            raise RuntimeError("case steer needs root (namespaces, cgroups, BPF)")
        for exe in ("bpftool", "nsenter", "unshare", "curl"):
            if not shutil.which(exe):
                raise RuntimeError(f"case steer: {exe} not found")
        mount_bpffs()
        tag = uuid.uuid4().hex[:6]
        self.pins = {s: f"/sys/fs/bpf/lota-bench-{s}-{tag}" for s in SETTINGS}
        with Topology(tag, NODE_IP, POD_IP, [VIP, ORIGIN_VIP], prefix="lotab") as t:
            self.t = t
            # cgroup A is the topology's own; B is a sibling made here (removed last)
            self.cg = {"off": t.cgroup, "on": t.cgroup + "-on"}
            os.mkdir(self.cg["on"])
            t.on_exit(lambda: rmdir_retry(self.cg["on"]))
            for s in SETTINGS:
                t.on_exit(lambda p=self.pins[s]: remove_pins(p))
            self.start_origin()
            self.lotad = {}
            for i, s in enumerate(SETTINGS):
                self.lotad[s] = self.start_lotad(s, 8080 + i)
            self.warm()
            for r in range(self.rounds):
                order = SETTINGS if r % 2 == 0 else SETTINGS[::-1]
                for s in order:
                    self.round(s)
            for s in SETTINGS:
                self.lotad[s].stop()
        self.summarize()

    def start_origin(self):
        from netns import ns
        from origin import Origin

        log("case 8: radosgw in the node namespace")
        o = Origin(os.path.join(self.work, "origin"), port=80, bind=ORIGIN_VIP, mon_port=3300,
                   netns=self.t.node)
        self.t.on_exit(o.stop)
        o.start()
        self.origin = o
        for extra, url in ((["-X", "PUT"], f"http://{ORIGIN_VIP}/{BUCKET}"),
                           (["-T", self.b.hot_path], f"http://{ORIGIN_VIP}/{BUCKET}/hot256")):
            r = ns(self.t.node, "curl", "-sS", "--fail-with-body", "--max-time", "120",
                   "--aws-sigv4", f"aws:amz:{REGION}:s3",
                   "--user", f"{o.access_key}:{o.secret_key}",
                   "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o", "/dev/null",
                   *extra, url, check=False, timeout=150)
            if r.returncode:
                raise RuntimeError(f"case 8: curl {url}: {r.stdout} {r.stderr}")
        s3 = o.s3(endpoint=f"http://{HOST}")  # presigning only: no connection is made
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "hot256"},
                                        ExpiresIn=7200)
        self.path = url[len(f"http://{HOST}"):]

    def start_lotad(self, s, port):
        from netns import NodeLotad

        topo = types.SimpleNamespace(node=self.t.node, cgroup=self.cg[s])
        d = NodeLotad(os.path.join(self.work, "lotad-" + s), f"http://{ORIGIN_VIP}:80", topo,
                      {HOST: VIP}, listen=f"{NODE_IP}:{port}", bpf="on", cgroup=self.cg[s],
                      bpf_pin_dir=self.pins[s], targets=f"{VIP}:80", sockmap=s, workers=2,
                      log_level="warn")
        self.t.on_exit(d.stop)
        d.start()
        for _ in range(100):
            m = d.metrics()
            if m.get("bpf_attached") == 1 and m.get("bpf_targets", 0) >= 1:
                return d
            time.sleep(0.05)
        raise RuntimeError(f"case 8: lotad sockmap={s} never attached: {m}\n{d.log_tail()}")

    # ---- clients in the pod ---------------------------------------------------------------

    def pod(self, s, cmd, timeout):
        from netns import enter, join_cgroup

        return subprocess.Popen(enter(self.t.pod) + cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=join_cgroup(self.cg[s]))

    def getload(self, s, conns, reqs, timeout=120):
        import json

        p = self.pod(s, [self.b.getload, "-d", f"{VIP}:80", HOST, self.path, str(conns),
                         str(reqs)], timeout)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise RuntimeError(f"case 8: getload {who(s)} ran past {timeout}s") from None
        try:
            d = json.loads(out)
        except ValueError:
            raise RuntimeError(f"case 8: getload {who(s)}: {out} {err}") from None
        if d["errors"]:
            raise RuntimeError(f"case 8: getload {who(s)}: {d['error']}")
        return d

    def wrk(self, s, conns):
        script = os.path.join(self.work, "range.lua")
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(f'wrk.method = "GET"\nwrk.path = [[{self.path}]]\n'
                        f'wrk.headers["Host"] = "{HOST}"\n'
                        'wrk.headers["Range"] = "bytes=0-4095"\n')
        p = self.pod(s, ["wrk", "-t2", f"-c{conns}", f"-d{self.wrk_secs}s", "--latency",
                         "-s", script, f"http://{VIP}:80/"], self.wrk_secs + 60)
        try:
            out, err = p.communicate(timeout=self.wrk_secs + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise RuntimeError(f"case 8: wrk {who(s)} ran too long") from None
        if "Non-2xx" in out or "Socket errors" in out or p.returncode:
            raise RuntimeError(f"case 8: wrk {who(s)}: errors:\n{out}\n{err}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        nreq = int(re.search(r"(\d+) requests in", out).group(1))
        lat = {}
        for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
            lat[q] = float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]
        return rps, lat["50"], lat["99"], nreq

    # ---- warm-up and rounds -------------------------------------------------------------

    def warm(self):
        log("case 8: warming both lotads (one 256 MiB miss each, in parallel)")
        procs = {s: self.pod(s, [self.b.getload, "-d", f"{VIP}:80", HOST, self.path, "1", "1"],
                             300) for s in SETTINGS}
        for s, p in procs.items():
            out, err = p.communicate(timeout=300)
            if p.returncode:
                raise RuntimeError(f"case 8: warming {who(s)}: {out} {err}")
        # a 4 KiB range on the warm object: served from the cache after the origin's 304
        for s in SETTINGS:
            m0 = self.lotad[s].metrics()
            r = self.pod(s, ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-D", "-",
                             "-H", "Range: bytes=0-4095", f"http://{HOST}{self.path}",
                             "--resolve", f"{HOST}:80:{VIP}"], 20)
            out, err = r.communicate(timeout=20)
            m1 = self.lotad[s].metrics()
            if not out or " 206" not in out.splitlines()[0]:
                raise RuntimeError(f"case 8: range GET via {who(s)}: {out} {err}")
            cache = re.search(r"(?im)^x-lota-cache:\s*(\S+)", out)
            hits = m1.get("cache_hits", 0) - m0.get("cache_hits", 0)
            self.res.notes.append(
                f"Case 8 check ({who(s)}): a `Range: bytes=0-4095` GET of the warm hot256 "
                f"from the pod answered 206, x-lota-cache: "
                f"{cache.group(1) if cache else 'absent'}, lotad cache_hits +{hits:g}.")

    def snapshot(self, s):
        m = self.lotad[s].metrics()
        return m

    def round(self, s):
        m0 = self.snapshot(s)
        for conns in (1, 4):
            d = self.getload(s, conns, self.hit_reqs[conns])
            self.res.add(CASE, f"warm hit 256 MiB, {conns} conn", who(s), "GB/s",
                         d["bytes"] / d["secs"] / 1e9)
        m1 = self.snapshot(s)
        nreq = 0
        for conns in self.wrk_conns:
            rps, p50, p99, n = self.wrk(s, conns)
            nreq += n
            metric = f"4 KiB range hit, {conns} conns"
            self.res.add(CASE, metric + ": req/s", who(s), "req/s", rps)
            self.res.add(CASE, metric + ": p50", who(s), "ms", p50)
            self.res.add(CASE, metric + ": p99", who(s), "ms", p99)
        m2 = self.snapshot(s)
        for c in COUNTERS:
            self.counters[s][c] += m2.get("bpf_" + c, 0) - m0.get("bpf_" + c, 0)
        for k, name in (("requests", "requests_total"), ("hits", "cache_hits"),
                        ("misses", "cache_misses")):
            self.served[s][k] += m2.get(name, 0) - m0.get(name, 0)
        # sk_msg redirects per 4 KiB request (each request is one send from the client)
        red = m2.get("bpf_redirected", 0) - m1.get("bpf_redirected", 0)
        self.res.add(CASE, "sk_msg redirects per 4 KiB request", who(s), "count",
                     red / nreq if nreq else float("nan"))
        self.res.add(CASE, "sockets inserted in sockhash per round", who(s), "count",
                     m2.get("bpf_inserted", 0) - m0.get("bpf_inserted", 0))

    # ---- summary --------------------------------------------------------------------------

    def summarize(self):
        R = self.res
        parts = []
        for r in R.rows:
            if r[0] != CASE or r[2] != who("on"):
                continue
            off = R.get(CASE, r[1], who("off"))
            if off and statistics.median(off) and not r[1].startswith(("sk_msg", "sockets")):
                parts.append(f"{r[1]} {statistics.median(r[4]) / statistics.median(off):.2f}x")
        R.notes.append("Case 8 sockmap-on / sockmap-off (medians): " + "; ".join(parts) + ".")
        for s in SETTINGS:
            c = self.counters[s]
            v = self.served[s]
            R.notes.append(
                f"Case 8 counters, {who(s)}, all rounds: lota_bpf_rewritten +{c['rewritten']:g}, "
                f"inserted +{c['inserted']:g}, redirected +{c['redirected']:g}, "
                f"redirect_failed +{c['redirect_failed']:g}, budget_spent "
                f"+{c['budget_spent']:g}; lotad requests +{v['requests']:g}, cache_hits "
                f"+{v['hits']:g}, cache_misses +{v['misses']:g}.")
        self.res.notes.append(
            "Case 8 setup: pod netns -> VIP 198.18.9.1:80 (a second address on the node's "
            "veth end) -> connect4 rewrite to lotad in the node netns, which revalidates with "
            "its own radosgw there (If-None-Match, 304) and serves from its cache; two lotads "
            "(bpf=on, workers=2, targets=VIP:80), sockmap off and on, each in its own child "
            "cgroup with its clients; rounds alternate off/on. The 4 KiB requests are "
            "`Range: bytes=0-4095` GETs of the warm 256 MiB object (wrk -t2, keep-alive): "
            "the smallest request lotad answers from its cache, so the client<->lotad path "
            "is exercised with no body from the origin, though every request still waits "
            "for the origin's 304 (strong mode; lotad has no ttl mode).")


def rmdir_retry(path):
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
