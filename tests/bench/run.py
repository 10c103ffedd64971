#!/usr/bin/python3
"""lota's benchmark suite (issue 5): lotad against the machine's limit (our sendfile
server), nginx proxy_cache and the origin (a real radosgw), in interleaved rounds
(A, B, C, A, B, C, ...: these 2-core VMs drift by 2x in minutes), medians and min-max.

    make bench            # full run
    make bench QUICK=1    # under 3 minutes

Prints a table and writes tests/bench/results/<timestamp>.md, .csv and latest.md.
Everything runs on loopback and every case stops by itself. Needs Debian's python3
(boto3), nginx, wrk and cc; run as root (RLIMIT_NOFILE is raised for the 10k case).
"""

import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

MiB = 1 << 20
GiB = 1 << 30
BUCKET = "bench"
HOST = "cwlota.com"  # path-style at radosgw (rgw_dns_name) and at lotad
CLK_TCK = os.sysconf("SC_CLK_TCK")
LIBS = ["-levent", "-levent_openssl", "-levent_pthreads", "-lssl", "-lcrypto", "-lbpf",
        "-lelf", "-lz", "-lpthread"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- plan ------------------------------------------------------------------------------

class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.rounds = 3 if quick else 7
        # lotad's herd takes tens of seconds a round today (see the notes)
        self.herd_rounds = 2 if quick else 4
        self.hit_reqs = {1: 2, 8: 1} if quick else {1: 4, 8: 2}  # per connection
        self.wrk_secs = 3 if quick else 5
        self.idle_conns = 10000
        self.idle_rounds = 2 if quick else 4
        self.synth_entries = 100000
        self.restart_rounds = 3 if quick else 5


# -- small helpers -----------------------------------------------------------------------

def cc(src, out, extra=()):
    cmd = ["cc", "-O2", "-g", "-Wall", "-Wextra", "-o", out,
           os.path.join(HERE, src), *extra]
    subprocess.run(cmd, check=True, cwd=TOP)
    return out


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def proc_tree(pid):
    """pid and its descendants (nginx: master and workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def cpu_secs(pids):
    """CPU time of pids, in seconds: per process, its live threads' time on CPU to the
    nanosecond (schedstat; /proc/PID/stat counts 10 ms ticks, coarse for a hit), or the
    process's own ticks where those are more (threads that ended, as the limit server's
    per-connection ones, are in its ticks only)."""
    total = 0.0
    for p in pids:
        live = ticks = 0.0
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    live += int(f.read().split()[0]) / 1e9
        except OSError:
            pass
        total += max(live, ticks)
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# -- subjects ----------------------------------------------------------------------------

class Endpoint:
    """Something that serves GETs on 127.0.0.1:port; pids() for CPU accounting."""

    def __init__(self, name, port, pids_fn):
        self.name = name
        self.port = port
        self.pids = pids_fn

    @property
    def host(self):
        return f"{HOST}:{self.port}"


class Nginx:
    def __init__(self, dir, origin_port):
        self.dir = dir
        self.cache_port, self.plain_port = free_ports_n(2)
        self.origin_port = origin_port
        self.proc = None

    def start(self):
        for d in ("cache", "tmp", "logs"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        with open(conf, "w") as f:
            f.write(f"""# written by tests/bench/run.py
user root;
worker_processes 2;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
worker_rlimit_nofile 100000;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    proxy_cache_path {d}/cache levels=1:2 keys_zone=bench:64m max_size=64g inactive=1h
                     use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{self.origin_port}; keepalive 64; }}
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_read_timeout 120s;
    server {{
        listen 127.0.0.1:{self.cache_port} reuseport;
        location / {{
            proxy_pass http://origin;
            proxy_cache bench;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 120s;
            proxy_cache_lock_age 120s;
        }}
    }}
    server {{
        listen 127.0.0.1:{self.plain_port} reuseport;
        location / {{ proxy_pass http://origin; }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", d, "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.cache_port)
        wait_port(self.plain_port)
        return self

    def pids(self):
        return proc_tree(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_ports_n(n):
    from origin import free_ports
    return free_ports(n)


# -- results -----------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.rows = []  # (case, metric, who, unit, [values])
        self.notes = []
        self.targets = []  # (target, value text, met?)

    def add(self, case, metric, who, unit, value):
        for r in self.rows:
            if r[:4] == (case, metric, who, unit):
                r[4].append(value)
                return
        self.rows.append((case, metric, who, unit, [value]))

    def get(self, case, metric, who):
        for r in self.rows:
            if r[0] == case and r[1] == metric and r[2] == who:
                return r[4]
        return []

    def med(self, case, metric, who):
        v = self.get(case, metric, who)
        return statistics.median(v) if v else float("nan")


def fmt(v):
    if v != v:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


# -- the suite -------------------------------------------------------------------------

class Bench:
    def __init__(self, build, quick, workdir):
        self.build = os.path.abspath(build)
        self.plan = Plan(quick)
        self.work = workdir
        self.res = Results()
        self.origin = None
        self.lotad = None
        self.nginx = None
        self.limit_proc = None
        self.bin = os.path.join(workdir, "bin")
        os.makedirs(self.bin, exist_ok=True)

    # ---- setup -----------------------------------------------------------------------

    def compile(self):
        self.getload = cc("getload.c", os.path.join(self.bin, "getload"), ["-lpthread"])
        self.sfs = cc("sendfile_server.c", os.path.join(self.bin, "sendfile_server"),
                      ["-lpthread"])
        self.synth = cc("synth_cache.c", os.path.join(self.bin, "synth_cache"),
                        ["-Iuser/lib", "-Icache", os.path.join(self.build, "libcache.a"), "-lz", "-lpthread"])

    def start_synth(self):
        self.synth_dir = os.path.join(self.work, "synth")
        self.synth_proc = subprocess.Popen(
            [self.synth, self.synth_dir, str(self.plan.synth_entries), "1024"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def setup(self):
        from origin import Origin
        from lotad import Lotad

        log("origin: starting radosgw")
        self.origin = Origin(os.path.join(self.work, "origin")).start()
        s3 = self.origin.s3()
        s3.create_bucket(Bucket=BUCKET)
        self.hot = os.urandom(256 * MiB)
        self.hot_path = os.path.join(self.work, "hot256")
        with open(self.hot_path, "wb") as f:
            f.write(self.hot)
        log("origin: uploading 256 MiB, 4 MiB and 4 KiB objects")
        s3.put_object(Bucket=BUCKET, Key="hot256", Body=self.hot)
        s3.put_object(Bucket=BUCKET, Key="obj4m", Body=self.hot[:4 * MiB])
        s3.put_object(Bucket=BUCKET, Key="small4k", Body=self.hot[:4096])
        # Cold copies share the tail RADOS objects of hot256 (radosgw copies by
        # reference), so the memstore does not grow by 256 MiB per copy.
        self.cold = {}
        for kind in ("herd-lotad", "herd-nginx", "miss-lotad", "miss-nginx"):
            for r in range(self.plan.rounds):
                key = f"{kind}-{r}"
                s3.copy_object(Bucket=BUCKET, Key=key,
                               CopySource={"Bucket": BUCKET, "Key": "hot256"})
                self.cold[(kind, r)] = key

        # lotad's own fills (ranged reads, read-ahead) sign with service credentials
        self.creds = os.path.join(self.work, "service-credentials")
        with open(self.creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = {self.origin.access_key}\n"
                    f"aws_secret_access_key = {self.origin.secret_key}\n")
        self.lotad = Lotad(os.path.join(self.work, "lotad"), self.origin.url, workers=2,
                           bpf="off", log_level="warn",
                           service_credentials=self.creds).start()
        self.nginx = Nginx(os.path.join(self.work, "nginx"), self.origin.port).start()
        lport = free_ports_n(1)[0]
        self.limit_proc = subprocess.Popen([self.sfs, str(lport), self.hot_path])
        wait_port(lport)

        self.ep = {
            "lotad": Endpoint("lotad", self.lotad.port, lambda: [self.lotad.proc.pid]),
            "nginx": Endpoint("nginx", self.nginx.cache_port, self.nginx.pids),
            "nginx-proxy": Endpoint("nginx-proxy", self.nginx.plain_port, self.nginx.pids),
            "limit": Endpoint("limit", lport, lambda: [self.limit_proc.pid]),
            "origin": Endpoint("origin", self.origin.port,
                               lambda: [self.origin.pids().get("radosgw")]),
        }
        self._s3_by_port = {}

    def path(self, ep, key):
        """A presigned GET path for key, signed for the Host the client sends to ep."""
        if ep.name == "limit":
            return "/" + key
        s3 = self._s3_by_port.get(ep.port)
        if s3 is None:
            s3 = self._s3_by_port[ep.port] = self.origin.s3(endpoint=f"http://{ep.host}")
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                        ExpiresIn=7200)
        return url[len(f"http://{ep.host}"):]

    def load(self, ep, key, conns, reqs, discard=True, timeout=300):
        cmd = [self.getload, *(["-d"] if discard else []), f"127.0.0.1:{ep.port}", ep.host,
               self.path(ep, key), str(conns), str(reqs)]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            d = json.loads(p.stdout)
        except ValueError:
            raise RuntimeError(f"getload {ep.name}: {p.stdout} {p.stderr}") from None
        if d["errors"]:
            raise RuntimeError(f"getload {ep.name} {key}: {d['error']}")
        d["client_cpu"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        return d

    def stop(self):
        for f in (lambda: self.lotad and self.lotad.stop(),
                  lambda: self.nginx and self.nginx.stop(),
                  lambda: self.limit_proc and (self.limit_proc.kill(), self.limit_proc.wait()),
                  lambda: self.origin and self.origin.url and self.origin.stop()):
            try:
                f()
            except Exception as e:  # keep tearing down the rest
                log(f"teardown: {e}")

    # ---- case 1 and 7: warm hits ------------------------------------------------------

    def case_warm(self):
        log("case 1/7: warm hits of a 256 MiB object")
        subjects = ["lotad", "nginx", "limit"]
        for s in ("lotad", "nginx"):  # warm: one GET each, then check it is a hit
            self.load(self.ep[s], "hot256", 1, 1)
        m0 = self.lotad.metrics()
        mark = self.origin.log_mark()
        self.load(self.ep["lotad"], "hot256", 1, 1)
        sent = self.origin.body_bytes("GET", f"/{BUCKET}/hot256", since=mark)
        self.res.notes.append(
            f"Warm check: after warming, one more lotad GET of hot256 made the origin send "
            f"{sent} body bytes (a 304 revalidation sends 0).")
        cpu = {s: [0.0, 0] for s in subjects}
        for r in range(self.plan.rounds):
            order = subjects[r % 3:] + subjects[:r % 3]
            for conns in (1, 8):
                for s in order:
                    ep = self.ep[s]
                    c0 = cpu_secs(ep.pids())
                    d = self.load(ep, "hot256", conns, self.plan.hit_reqs[conns])
                    c1 = cpu_secs(ep.pids())
                    gbs = d["bytes"] / d["secs"] / 1e9
                    self.res.add("1 warm hit 256 MiB", f"{conns} conn", s, "GB/s", gbs)
                    self.res.add("7 CPU per GiB (warm hits)", f"server CPU, {conns} conn", s,
                                 "s/GiB", (c1 - c0) / (d["bytes"] / GiB))
                    if s == "limit":
                        self.res.add("0 client check", f"getload CPU, {conns} conn vs limit",
                                     "getload", "% of 1 core",
                                     100 * d["client_cpu"] / d["secs"])
        self.res.notes.append(
            "Case 7 counts server processes only (lotad; nginx master+workers; the limit "
            "server): lotad's revalidation costs the origin CPU too, not counted here.")

    # ---- case 9: first-read verification ---------------------------------------------

    def _settled(self, d, timeout=120):
        """Waits until every fill d started is committed or aborted."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = d.metrics()
            if m["cache_fills_committed"] + m["cache_fills_aborted"] >= m["cache_fills_started"]:
                return
            time.sleep(0.05)
        raise RuntimeError("lotad-verify: fills not committed")

    def case_verify(self):
        """Warm hits of chunks lotad has not verified since it started (each chunk is read
        and its CRC checked before its first byte goes out) against hits of verified
        chunks, 256 MiB, 1 connection. A lotad of its own, scrub-rate 0, so that only the
        first read after a restart verifies; the chunks stay in the page cache."""
        from lotad import Lotad

        log("case 9: warm hits after a restart (every chunk unverified) vs verified chunks")
        case = "9 warm hit 256 MiB, first read after restart vs verified"
        d = Lotad(os.path.join(self.work, "lotad-verify"), self.origin.url, workers=2,
                  bpf="off", log_level="warn", scrub_rate="0").start()
        ep = Endpoint("lotad-verify", d.port, lambda: [d.proc.pid])
        checked = []
        try:
            for key in ("hot256", "obj4m"):
                self.load(ep, key, 1, 1)
            self._settled(d)
            self.load(ep, "hot256", 1, 1)
            for _ in range(self.plan.rounds):
                d.stop()
                d.start()
                # the restarted process's first request (origin connection, first
                # sendfile) on another object, so that it is not counted as verification
                self.load(ep, "obj4m", 1, 1)
                v0 = d.metrics().get("cache_verified_bytes", 0)
                first = self.load(ep, "hot256", 1, 1)
                checked.append(d.metrics().get("cache_verified_bytes", 0) - v0)
                again = self.load(ep, "hot256", 1, 1)
                self.res.add(case, "1 conn", "lotad", "GB/s",
                             first["bytes"] / first["secs"] / 1e9)
                self.res.add(case, "1 conn", "lotad verified", "GB/s",
                             again["bytes"] / again["secs"] / 1e9)
        finally:
            d.stop()
        self.res.notes.append(
            "Case 9: 'lotad' is the first GET of hot256 after a restart (scrub-rate 0: every "
            "chunk unverified, so the read path reads each and checks its CRC-32 before its "
            "first byte goes out; a GET of obj4m before it takes the restarted process's "
            "first-request costs), 'lotad verified' the GET right after it; the ratio is the cost "
            "of first-read verification from page cache (from disk it is the disk's read, "
            "which the sendfile then does not repeat). Bytes verified during each first "
            f"read: {', '.join(str(int(c)) for c in checked)} (0: this build's read path "
            "does not verify, and the two rows measure the same thing).")

    # ---- case 2: cold herd ------------------------------------------------------------

    def case_herd(self):
        log("case 2: cold herd, 32 clients on one cold 256 MiB object")
        for r in range(self.plan.herd_rounds):
            order = ["lotad", "nginx"] if r % 2 == 0 else ["nginx", "lotad"]
            for s in order:
                key = self.cold[(f"herd-{s}", r)]
                mark = self.origin.log_mark()
                d = self.load(self.ep[s], key, 32, 1)
                sent = self.origin.body_bytes("GET", f"/{BUCKET}/{key}", since=mark)
                c = "2 cold herd (32 x 256 MiB)"
                self.res.add(c, "origin bytes per object", s, "x", sent / (256 * MiB))
                self.res.add(c, "all finished", s, "s", d["secs"])
                self.res.add(c, "TTFB median", s, "ms", 1000 * statistics.median(d["ttfb"]))
                self.res.add(c, "TTFB max", s, "ms", 1000 * max(d["ttfb"]))

    # ---- case 3: miss throughput ------------------------------------------------------

    def case_miss(self):
        log("case 3: miss throughput")
        for r in range(self.plan.rounds):
            order = [("lotad", self.cold[("miss-lotad", r)]), ("origin", "hot256"),
                     ("nginx", self.cold[("miss-nginx", r)])]
            order = order[r % 3:] + order[:r % 3]
            for s, key in order:
                d = self.load(self.ep[s], key, 1, 1)
                self.res.add("3 miss 256 MiB, 1 conn", "throughput", s, "GB/s",
                             d["bytes"] / d["secs"] / 1e9)
                self.res.add("3 miss 256 MiB, 1 conn", "TTFB", s, "ms", 1000 * d["ttfb"][0])
                if s == "lotad":
                    self._settled(self.lotad)

    # ---- cases 10 and 11: real readers, cold and warm (tests/bench/readcases.py) -------

    def case_awscp(self):
        from readcases import ReadCases

        ReadCases(self).aws_copy()

    def case_kv(self):
        from readcases import ReadCases

        ReadCases(self).kv_object()

    def case_paced(self):
        from paced import Paced

        Paced(self).run()

    # ---- case 4: small bypass GETs ----------------------------------------------------

    def wrk(self, ep, key):
        script = os.path.join(self.work, f"wrk-{ep.name}.lua")
        with open(script, "w") as f:
            f.write(f'wrk.method = "GET"\nwrk.path = [[{self.path(ep, key)}]]\n'
                    f'wrk.headers["Host"] = "{ep.host}"\n')
        cmd = ["wrk", "-t2", "-c64", f"-d{self.plan.wrk_secs}s", "--latency", "-s", script,
               f"http://127.0.0.1:{ep.port}/"]
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=self.plan.wrk_secs + 60)
        out = p.stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"wrk {ep.name}: errors:\n{out}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = {}
        for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
            lat[q] = float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[u]
        return rps, lat["50"], lat["99"]

    def case_small(self):
        log("case 4: 4 KiB GETs below min-object-size, wrk -t2 -c64")
        subjects = ["lotad", "origin", "nginx-proxy"]
        for r in range(self.plan.rounds):
            for s in subjects[r % 3:] + subjects[:r % 3]:
                rps, p50, p99 = self.wrk(self.ep[s], "small4k")
                c = "4 4 KiB GETs, 64 conns"
                self.res.add(c, "req/s", s, "req/s", rps)
                self.res.add(c, "p50", s, "ms", p50)
                self.res.add(c, "p99", s, "ms", p99)

    # ---- case 5: idle connections ---------------------------------------------------

    def open_idle(self, n):
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            s.connect(("127.0.0.1", self.lotad.port))
            socks.append(s)
        return socks

    def case_idle(self):
        log(f"case 5: {self.plan.idle_conns} idle keep-alive connections")
        ep = self.ep["lotad"]
        self.load(ep, "obj4m", 1, 2)  # cached: 4 MiB is min-object-size
        c = f"5 {self.plan.idle_conns // 1000}k idle conns"
        for r in range(self.plan.idle_rounds):
            d = self.load(ep, "obj4m", 1, 20)
            self.res.add(c, "4 MiB hit latency p50, no idle conns", "lotad", "ms",
                         1000 * statistics.median(d["lat"]))
            rss0 = self.lotad.status("VmRSS")
            socks = self.open_idle(self.plan.idle_conns)
            time.sleep(1.0)
            opened = self.lotad.metrics().get("connections_open", float("nan"))
            rss1 = self.lotad.status("VmRSS")
            d = self.load(ep, "obj4m", 1, 20)
            self.res.add(c, "4 MiB hit latency p50, with idle conns", "lotad", "ms",
                         1000 * statistics.median(d["lat"]))
            self.res.add(c, "4 MiB hit latency max, with idle conns", "lotad", "ms",
                         1000 * max(d["lat"]))
            self.res.add(c, "RSS with idle conns", "lotad", "MB", rss1 * 1024 / 1e6)
            self.res.add(c, "RSS added by idle conns", "lotad", "MB", (rss1 - rss0) * 1024 / 1e6)
            self.res.add(c, "connections open (lotad's gauge)", "lotad", "count", opened)
            for s in socks:
                s.close()
            time.sleep(0.5)

    # ---- case 6: restart with 100k entries ------------------------------------------

    def case_restart(self):
        from lotad import Lotad

        out, err = self.synth_proc.communicate(timeout=600)
        if self.synth_proc.returncode != 0:
            raise RuntimeError(f"synth_cache: {err}")
        n = int(out.split()[-1])
        log(f"case 6: restart with {n} cached entries")
        self.res.notes.append(f"Case 6: {n} entries of 1 KiB made by synth_cache through "
                              "cache_chunk_begin/cache_fill_write/cache_fill_commit, one chunk "
                              "each; file headers in page cache.")
        c = f"6 restart, {n // 1000}k entries"
        for r in range(self.plan.restart_rounds):
            d = Lotad(os.path.join(self.work, "lotad-restart"), self.origin.url, workers=2,
                      bpf="off", log_level="warn", cache_dir=self.synth_dir)
            d.write_config()
            d._log = open(d.log_path, "ab")
            t0 = time.monotonic()
            d.proc = subprocess.Popen([os.path.join(self.build, "lotad"), "--config",
                                       d.conf_path], stdin=subprocess.DEVNULL, stdout=d._log,
                                      stderr=subprocess.STDOUT)
            t = None
            while time.monotonic() - t0 < 60 and d.proc.poll() is None:
                try:
                    with urllib.request.urlopen(d.admin_url + "/healthz", timeout=1) as h:
                        if h.read().strip() == b"ok":
                            t = time.monotonic() - t0
                            break
                except OSError:
                    time.sleep(0.002)
            try:
                entries = d.metrics().get("cache_entries", float("nan"))
            finally:
                d.stop()
            if t is None:
                raise RuntimeError(f"restarted lotad never served /healthz:\n{d.log_tail()}")
            self.res.add(c, "exec to /healthz ok", "lotad", "s", t)
            self.res.add(c, "entries indexed", "lotad", "count", entries)

    # ---- case 12: the same hits and misses on a busy node (tests/bench/busy.py) -------

    def case_busy(self):
        from busy import BusyCase

        BusyCase(self).run()

    # ---- case 8: pod -> lotad through BPF steering, sockmap off vs on -----------------

    def case_steer(self):
        from steer import SteerCase

        log("case 8: pod -> lotad through BPF steering, sockmap off vs on")
        SteerCase(self).run()

    # ---- report ---------------------------------------------------------------------

    def targets(self):
        R = self.res
        T = []

        def t(name, value, ok, how):
            if value is None or value == [] or value != value:
                T.append((name, "not run", ""))
            else:
                T.append((name, how, "met" if ok else "SHORT"))

        c1, c7 = "1 warm hit 256 MiB", "7 CPU per GiB (warm hits)"
        # issue 17: >= 0.95x nginx and >= 0.9x the limit on 1 connection, >= 0.95x the
        # limit on 8; CPU per GiB <= 0.8x nginx
        for conns, least in (("1 conn", 0.9), ("8 conn", 0.95)):
            ln = R.med(c1, conns, "lotad") / R.med(c1, conns, "nginx")
            ll = R.med(c1, conns, "lotad") / R.med(c1, conns, "limit")
            t(f"warm hit {conns} >= 0.95x nginx", ln, ln >= 0.95, f"{ln:.2f}x")
            t(f"warm hit {conns} >= {least}x limit", ll, ll >= least, f"{ll:.2f}x")
            cn = (R.med(c7, f"server CPU, {conns}", "lotad") /
                  R.med(c7, f"server CPU, {conns}", "nginx"))
            t(f"CPU per GiB of warm hits, {conns}: <= 0.8x nginx", cn, cn <= 0.8, f"{cn:.2f}x")
        c2 = "2 cold herd (32 x 256 MiB)"
        g = R.get(c2, "origin bytes per object", "lotad")
        t("herd: origin bytes <= 1.02x the object", g, g and max(g) <= 1.02,
          f"{max(g):.3f}x max" if g else "n/a")
        hr = R.med(c2, "all finished", "lotad") / R.med(c2, "all finished", "nginx")
        t("herd: <= 0.5x nginx's time", hr, hr <= 0.5, f"{hr:.2f}x")
        tr = R.med(c2, "TTFB median", "lotad") / R.med(c2, "TTFB median", "nginx")
        t("herd: TTFB median <= 0.1x nginx", tr, tr <= 0.1, f"{tr:.2f}x")
        mr = (R.med("3 miss 256 MiB, 1 conn", "throughput", "lotad") /
              R.med("3 miss 256 MiB, 1 conn", "throughput", "origin"))
        t("miss 1 conn >= 1.0x origin direct", mr, mr >= 1.0, f"{mr:.2f}x")
        c13 = "13 cold GET, origin paced per connection"
        pr = R.med(c13, "throughput", "lotad") / R.med(c13, "throughput", "origin")
        t("cold 1-conn GET, origin paced per connection: >= 1.0x origin", pr, pr >= 1.0,
          f"{pr:.2f}x")
        self._read_targets(t)
        b1, b3 = "12 busy node: warm hit 256 MiB, 1 conn", "12 busy node: miss 256 MiB, 1 conn"
        r = R.med(b1, "throughput", "lotad") / R.med(b1, "throughput", "nginx")
        t("busy node: warm hit 1 conn >= 0.95x nginx", r, r >= 0.95, f"{r:.2f}x")
        r = R.med(b3, "throughput", "lotad") / R.med(b3, "throughput", "origin")
        t("busy node: miss >= 0.9x origin direct", r, r >= 0.9, f"{r:.2f}x")
        c4 = "4 4 KiB GETs, 64 conns"
        added = R.med(c4, "p99", "lotad") - R.med(c4, "p99", "origin")
        t("4 KiB p99 added latency <= 100 us", added, added <= 0.1,
          f"{added * 1000:+.0f} us (medians of p99)")
        c5 = [r for r in R.rows if r[0].startswith("5 ") and r[1] == "RSS with idle conns"]
        if c5:
            rss = max(c5[0][4])
            t("10k idle conns < 64 MB RSS", rss, rss < 64, f"{rss:.1f} MB max")
        c6 = [r for r in R.rows if r[0].startswith("6 ") and r[1] == "exec to /healthz ok"]
        if c6:
            m = statistics.median(c6[0][4])
            t("100k-entry restart < 1 s", m, m < 1, f"{m:.2f} s median")
        return T

    def _read_targets(self, t):
        """Issue 12's targets for cases 10 and 11."""
        R = self.res
        a, k = "10 aws s3 cp 512 MiB", "11 full GET 8 MiB, 1 conn"
        for who, most in (("lotad", 1.05), ("lotad warm", 0.8)):
            r = R.med(a, "copy time", who) / R.med(a, "copy time", "origin")
            t(f"aws s3 cp {who}: <= {most}x origin's time", r, r <= most, f"{r:.2f}x")
        for who, most in (("lotad", 1.1), ("lotad warm", 1.0)):
            for metric in ("TTFB", "total"):
                r = R.med(k, metric, who) / R.med(k, metric, "origin")
                t(f"8 MiB {who} {metric}: <= {most}x origin", r, r <= most, f"{r:.2f}x")
        for case in (a, k):
            v = R.get(case, "origin bytes per byte", "lotad")
            t(f"{case.split(' ', 1)[1]} cold: origin bytes per byte <= 1.02", v,
              v and max(v) <= 1.02, f"{max(v):.3f} max" if v else "n/a")

    def report(self, started, elapsed):
        R = self.res
        refs = {"lotad": ["nginx", "limit", "origin"]}
        lines = []
        lines.append(f"# lota benchmarks ({'QUICK' if self.plan.quick else 'full'} run)\n")
        lines.append(f"Started {started} UTC, {elapsed:.0f} s. {machine()}\n")
        lines.append(f"{self.plan.rounds} interleaved rounds per case (case 2: {self.plan.herd_rounds}, case 5: "
                     f"{self.plan.idle_rounds}, case 6: {self.plan.restart_rounds}); "
                     "median [min-max]; ratio = lotad's median / the other's median (case 8: "
                     "sockmap-on's median / sockmap-off's).\n")
        lines.append("| case | metric | who | median | min-max | n | lotad / this |")
        lines.append("|---|---|---|---|---|---|---|")
        csvrows = [["case", "metric", "who", "unit", "median", "min", "max", "n", "values"]]
        for case, metric, who, unit, vals in sorted(R.rows, key=lambda r: int(r[0].split()[0])):
            med = statistics.median(vals)
            ratio = ""
            ref = "sockmap-on" if case.startswith("8 ") else "lotad"
            if who != ref and R.get(case, metric, ref) and med:
                ratio = f"{R.med(case, metric, ref) / med:.2f}x"
            lines.append(f"| {case} | {metric} | {who} | {fmt(med)} {unit} | "
                         f"{fmt(min(vals))}-{fmt(max(vals))} | {len(vals)} | {ratio} |")
            csvrows.append([case, metric, who, unit, f"{med:.6g}", f"{min(vals):.6g}",
                            f"{max(vals):.6g}", len(vals), " ".join(f"{v:.6g}" for v in vals)])
        lines.append("\n## Targets\n")
        lines.append("| target | where we stand | |")
        lines.append("|---|---|---|")
        for name, how, verdict in self.targets():
            lines.append(f"| {name} | {how} | {verdict} |")
        lines.append("\n## Notes\n")
        for n in NOTES + R.notes:
            lines.append(f"- {n}")
        return "\n".join(lines) + "\n", csvrows


NOTES = [
    "who: lotad = lotad strong mode (every GET revalidated at the origin with "
    "If-None-Match; a 304 is served from the cache file with sendfile), workers=2, bpf=off, "
    "log-level=warn; nginx = nginx proxy_cache (sendfile on, proxy_cache_lock on, 2 workers, "
    "access_log off) keyed by URI path: it does not revalidate and does not check the "
    "caller's signature on a hit, so it does less work than lotad per hit; nginx-proxy = "
    "the same nginx as a plain proxy (upstream keepalive); limit = tests/bench/"
    "sendfile_server.c sendfiling the same 256 MiB file from page cache; origin = radosgw "
    "directly.",
    "lotad ttl mode: lotad refuses `consistency = ttl:S` (it would need local signature checks): not measured.",
    "Load: tests/bench/getload.c (one thread per connection, keep-alive, bodies discarded "
    "with recv(MSG_TRUNC)); case 4 uses wrk -t2 -c64 with a Lua script that sets the path "
    "of a presigned URL and the Host it was signed for. Client and servers share the same "
    "2 cores; '0 client check' shows getload's CPU while it reads at the limit.",
    "Herd origin bytes per object: 2xx GET body bytes the rgw log has for the key / 256 MiB "
    "(1.0: the origin sent the object once). radosgw direct herd is not run (FACTS: 32 "
    "bodies, 11-13 s).",
    "4 KiB added latency: lotad's p99 minus the origin's p99 (medians over rounds); "
    "radosgw at ~1.3k req/s with a p50 of tens of ms dominates, so this is noisy.",
]


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    load = os.getloadavg()
    return (f"Machine: {os.cpu_count()} vCPU {cpu}, {mem:.0f} GiB RAM, kernel "
            f"{platform.release()}; load average at start {load[0]:.1f} (other jobs may "
            "share the machine).")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "") not in
                    ("", "0"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--cases",
                    default="warm,verify,herd,miss,paced,awscp,kv,busy,small,idle,restart,steer")
    args = ap.parse_args()
    os.environ["LOTA_BUILD"] = os.path.abspath(args.build)
    for exe in ("nginx", "wrk", "cc"):
        if not shutil.which(exe):
            sys.exit(f"bench: {exe} not found (scripts/deps.sh installs it)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 200000
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.datetime.utcnow()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="lota-bench-")
    b = Bench(args.build, args.quick, work)
    cases = args.cases.split(",")
    try:
        b.compile()
        if "restart" in cases:
            b.start_synth()
        b.setup()
        for name in cases:
            getattr(b, "case_" + name)()
    finally:
        if getattr(b, "synth_proc", None) and b.synth_proc.poll() is None:
            b.synth_proc.kill()
            b.synth_proc.wait()
        b.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work directory kept: {work}")
    md, rows = b.report(started.strftime("%Y-%m-%d %H:%M"), time.monotonic() - t0)
    print(md)
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    with open(os.path.join(out, stamp + ".md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, stamp + ".csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(md)
    log(f"results: {out}/{stamp}.md, .csv, latest.md")


if __name__ == "__main__":
    main()
