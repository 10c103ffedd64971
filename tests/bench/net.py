#!/usr/bin/python3
"""lota's NET benchmark (issue 16): the origin far away, nodes on rate-limited links.

    make bench NET=1            # full run, under 15 minutes
    make bench NET=1 QUICK=1    # smaller objects, 2 rounds, about 3 minutes

A real radosgw in an origin namespace behind a 200 MB/s link and a 20 ms round trip (a
delaying relay, delay_relay.c, in front of it), three node namespaces each running lotad in
cluster mode behind 600 MB/s links (netrig.py), and real clients inside a node's namespace
(netclient.py: boto3, awscrt; the aws cli). Cases, in interleaved rounds with medians:
epochs 1 (cold) and 2 (warm) against reading the origin directly for boto3, aws s3 cp and
the CRT client; a pre-staged epoch 1 against a cold one; a hot 1 GiB object read by all
three nodes at once; a safetensors-style model load; the origin's requests and bytes for
each. Prints the table and writes tests/bench/results/net-<time>[-quick]/ (report.md,
results.csv, one PNG chart per case) and results/net-latest.md. Root only; everything it
makes is removed on the way out, after a failure or Ctrl-C too.
"""

import argparse
import contextlib
import csv
import datetime
import http.client
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, HERE)

from netrig import MEMBERS, NODES, Rig, die_with_parent  # noqa: E402
from run import Results, cc, fmt, log, machine  # noqa: E402

PY = "/usr/bin/python3"
AWS = "/usr/bin/aws"
MiB = 1 << 20
GiB = 1 << 30
BUCKET = "bench"
ORIGIN_RATE = 200e6  # bytes/s out of the origin, shared by every node
LINK_RATE = 600e6  # bytes/s each way on every node's link
RTT_MS = 20
CONN_RATE = 100e6  # bytes/s one origin connection gets at most (S3 paces a GET near this)
S3_PORT = 80  # the CRT client dials port 80 whatever the Host says
PEER_PORT = 8081
ADMIN_PORT = 9090
RGW_PORT = 7480  # radosgw, on the origin namespace's loopback: reached through the relay
CLIENT_NODE = "n1"  # the job's node in the epoch, prestage and model cases
IP = MEMBERS
ORIGIN_URL = f"http://{IP['or']}:{S3_PORT}"
CLIENTS = ("boto3", "aws-cli", "crt")
WHO_EPOCH = ("direct", "epoch 1 (cold)", "epoch 2 (warm)")
CONSTS = {"clients": CLIENTS, "who_epoch": WHO_EPOCH, "origin_rate": ORIGIN_RATE,
          "link_rate": LINK_RATE, "rtt_ms": RTT_MS, "conn_rate": CONN_RATE}


class Plan:
    def __init__(self, quick):
        self.quick = quick
        self.rounds = 2 if quick else 5
        self.shards = 40
        self.shard_size = 5 * MiB if quick else 16 * MiB  # 16 MiB: two 8 MiB parts each
        self.tensors = 64 if quick else 256  # of 4 MiB: the model and the hot object
        self.job_start = 1.0 if quick else 2.0  # from the job's launch to its first read
        self.limit_s = 600 if quick else 870  # the whole run, teardown included: < 15 min
        self.client_timeout = 240

    @property
    def model_size_hint(self):
        return self.tensors * 4 * MiB


class Timeout(Exception):
    pass


# -- lotad in a node namespace -----------------------------------------------------------

def node_lotad_class():
    from cluster import NsLotad
    from lotad import BUILD, LotadError

    class NodeLotad(NsLotad):
        """NsLotad started through nsenter with PR_SET_PDEATHSIG: a benchmark killed
        without its teardown takes its lotads with it."""

        def start(self, timeout=20):
            self.write_config()
            cmd = ["nsenter", "--net=/run/netns/" + self.netns, os.path.join(BUILD, "lotad"),
                   "--config", self.conf_path]
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise LotadError(f"lotad exited {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(OSError):
                    if self.get("/healthz").strip() == "ok":
                        return self
                time.sleep(0.05)
            self.stop()
            raise LotadError(f"lotad not healthy after {timeout}s:\n{self.log_tail()}")

    return NodeLotad


# -- the benchmark -----------------------------------------------------------------------

class NetBench:
    def __init__(self, build, plan, work):
        self.build = os.path.abspath(build)
        self.plan = plan
        self.work = work
        self.res = Results()
        self.rig = None
        self.origin = None
        self.lotad = {}
        self.bin = os.path.join(work, "bin")
        self.shm = f"/dev/shm/lbn{os.getpid()}"
        os.makedirs(self.bin, exist_ok=True)
        self.notes = []
        self.keep = False

    # ---- setup -------------------------------------------------------------------------

    def compile(self):
        self.relay_bin = cc("delay_relay.c", os.path.join(self.bin, "delay_relay"))
        self.getload_path = cc("getload.c", os.path.join(self.bin, "getload"), ["-lpthread"])
        self.sfs = cc("sendfile_server.c", os.path.join(self.bin, "sendfile_server"),
                      ["-lpthread"])
        self.lotactl = os.path.join(self.build, "lotactl")
        for exe in (self.lotactl, os.path.join(self.build, "lotad")):
            if not os.access(exe, os.X_OK):
                raise RuntimeError(f"{exe} missing: run make first")

    def setup(self, rig):
        self.rig = rig
        self.start_origin()
        self.upload()
        self.start_lotads()

    def start_origin(self):
        from origin import Origin

        log("origin: radosgw in its namespace, the delaying relay in front of it")
        o = Origin(os.path.join(self.work, "origin"), bind="127.0.0.1", port=RGW_PORT,
                   mon_port=3300, netns=self.rig.ns("or"), mem_gib=6)
        self.rig.on_exit(o.stop)
        o.start()
        self.origin = o
        # origin.sh stop removes its directory: a kept work directory keeps the rgw log
        self.rig.on_exit(lambda: self.keep and shutil.copy(o.log_path, self.work))
        self.relay = self.rig.spawn("or", [self.relay_bin, f"{IP['or']}:{S3_PORT}",
                                           f"127.0.0.1:{RGW_PORT}", str(RTT_MS),
                                           str(self.plan.limit_s + 60),
                                           str(int(CONN_RATE))])
        self.creds = os.path.join(self.work, "service-credentials")
        with open(self.creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = {o.access_key}\n"
                    f"aws_secret_access_key = {o.secret_key}\n")
        os.chmod(self.creds, 0o600)

    def in_origin_ns(self, fn, *a):
        from cluster import run_in_ns
        return run_in_ns(self.rig.ns("or"), fn, *a)

    def put(self, key, data):
        """PUT straight to radosgw inside the origin namespace (not through the relay)."""
        url, hdrs = self.origin.signed_headers("PUT", BUCKET, key)
        hdrs["Content-Length"] = str(len(data))
        conn = http.client.HTTPConnection("127.0.0.1", RGW_PORT, timeout=120)
        try:
            conn.request("PUT", url[len(self.origin.url):], body=data, headers=hdrs)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                raise RuntimeError(f"PUT {key}: {r.status} {body[:300]}")
        finally:
            conn.close()

    def upload(self):
        p = self.plan
        log(f"origin: uploading {p.shards} shards of {p.shard_size // MiB} MiB, a "
            f"{p.model_size_hint // MiB} MiB model and a probe object")
        self.in_origin_ns(self.origin.create_bucket, BUCKET)
        shards = {}
        for i in range(p.shards):
            key = f"shards/shard-{i:02d}.tar"
            data = os.urandom(p.shard_size)
            self.in_origin_ns(self.put, key, data)
            shards[key] = [len(data), zlib.crc32(data)]
        self.model_key = self.pick_model_key()
        data = safetensors_blob(p.tensors, 4 * MiB)
        self.in_origin_ns(self.put, self.model_key, data)
        self.model_size = len(data)
        model = {self.model_key: [len(data), zlib.crc32(data)]}
        del data
        self.in_origin_ns(self.put, "probe-1k", os.urandom(1024))
        self.shards_man = self.manifest("shards", shards)
        self.model_man = self.manifest("model", model)
        self.shard_bytes = sum(v[0] for v in shards.values())
        self.shard_owners = {k: self.owner(k) for k in shards}

    def manifest(self, name, objects):
        path = os.path.join(self.work, name + ".json")
        with open(path, "w") as f:
            json.dump({"bucket": BUCKET, "objects": objects}, f)
        return path

    @staticmethod
    def peer_id(n):
        return f"{IP[n]}:{PEER_PORT}"

    def owner(self, key):
        from cluster import hrw_owner
        oid = hrw_owner([self.peer_id(n) for n in NODES], BUCKET, key)
        return next(n for n in NODES if self.peer_id(n) == oid)

    def pick_model_key(self):
        """The model's name: the first whose owner is not the job's node, the case of two
        keys in three (its bytes cross a link to reach the job)."""
        for i in range(100):
            key = f"models/model-{i}.safetensors"
            if self.owner(key) != CLIENT_NODE:
                return key
        raise RuntimeError("no model key owned away from the job's node")

    def start_lotads(self):
        NodeLotad = node_lotad_class()
        secret = os.path.join(self.work, "cluster-secret")
        with open(secret, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        os.chmod(secret, 0o600)
        for n in NODES:
            d = NodeLotad(os.path.join(self.work, "lotad-" + n), ORIGIN_URL,
                          netns=self.rig.ns(n), config={"self": self.peer_id(n)},
                          listen=f"{IP[n]}:{S3_PORT}", admin=f"{IP[n]}:{ADMIN_PORT}",
                          peer_listen=self.peer_id(n),
                          peers=",".join(self.peer_id(m) for m in NODES),
                          cluster_secret=secret, service_credentials=self.creds,
                          workers=2, log_level="warn")
            self.rig.on_exit(d.stop)
            d.start()
            self.lotad[n] = d
        end = time.monotonic() + 30
        while not self.converged():
            if time.monotonic() > end:
                raise RuntimeError("the three lotads never saw each other up")
            time.sleep(0.2)
        log("lotad: three nodes up, each sees the other two")

    def converged(self):
        for n, d in self.lotad.items():
            st = {m["id"]: m["state"] for m in json.loads(d.get("/admin/peers"))["members"]}
            want = {self.peer_id(m): ("self" if m == n else "up") for m in NODES}
            if st != want:
                return False
        return True

    # ---- helpers -----------------------------------------------------------------------

    def env(self, endpoint):
        e = self.origin.client_env(endpoint=endpoint)
        # the clients' defaults, not whatever a config file on this machine says
        e["AWS_CONFIG_FILE"] = os.path.join(self.work, "no-aws-config")
        e["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.work, "no-aws-credentials")
        return e

    def endpoint(self, who):
        return ORIGIN_URL if who == "direct" else f"http://{IP[CLIENT_NODE]}:{S3_PORT}"

    def host(self, who):
        return IP["or"] if who == "direct" else IP[CLIENT_NODE]

    def client(self, node, cmd, endpoint, timeout=None, ok_codes=(0,)):
        """Runs cmd in node's namespace: (JSON it printed or {}, wall s, CPU s)."""
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = self.rig.run(node, cmd, timeout or self.plan.client_timeout, env=self.env(endpoint))
        secs = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        out = {}
        with contextlib.suppress(ValueError, IndexError):
            out = json.loads(p.stdout.strip().splitlines()[-1])
        if p.returncode not in ok_codes or "error" in out:
            raise ClientError(f"{cmd[:3]} on {node}: exit {p.returncode}: "
                              f"{out.get('error', '')}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
        return out, secs, cpu

    def metrics_sum(self, name):
        return sum(d.metrics().get(name, 0) for d in self.lotad.values())

    def wait_fills_idle(self, timeout=180):
        """Until every fill lotad started (chunk fills and read-ahead included) has
        committed or been abandoned, on all three nodes."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = [d.metrics() for d in self.lotad.values()]
            started = sum(x.get("cache_fills_started", 0) for x in m)
            done = sum(x.get("cache_fills_committed", 0) + x.get("cache_fills_aborted", 0)
                       for x in m)
            if started == done:
                return
            time.sleep(0.1)
        raise RuntimeError(f"fills still running after {timeout}s")

    def evict_all(self):
        """lotactl evict --all on every node (its admin socket), until no entry is left
        (the cache_entries gauge follows within lotad's one-second tick)."""
        for d in self.lotad.values():
            p = subprocess.run([self.lotactl, "--admin", "unix:" + d.admin_socket, "--json",
                                "evict", "--all"], capture_output=True, text=True, timeout=30)
            if p.returncode:
                raise RuntimeError(f"lotactl evict --all: {p.stdout} {p.stderr}")
        end = time.monotonic() + 5
        while self.metrics_sum("cache_entries"):
            if time.monotonic() > end:
                raise RuntimeError("entries left 5 s after evict --all")
            time.sleep(0.1)

    def origin_mark(self):
        return self.origin.log_mark(), time.monotonic()

    def origin_since(self, mark):
        """(requests, GETs with a body, body bytes sent, 304s, seconds) since mark."""
        off, t0 = mark
        reqs = self.origin.log_requests(off)
        secs = time.monotonic() - t0
        body = [r for r in reqs if r.method == "GET" and r.status in (200, 206)]
        return {"requests": len(reqs), "bodies": len(body),
                "bytes": sum(r.bytes for r in body),
                "not_modified": sum(r.status == 304 for r in reqs),
                "errors": sum(r.status >= 400 for r in reqs), "secs": secs}

    def add_origin_rows(self, case, who, o, read_bytes):
        self.res.add(case, "origin bytes per byte read", who, "x", o["bytes"] / read_bytes)
        self.res.add(case, "origin requests", who, "count", o["requests"])
        self.res.add(case, "origin request rate", who, "req/s", o["requests"] / o["secs"])
        if o["errors"]:
            self.notes.append(f"{case}, {who}: the origin answered {o['errors']} requests "
                              "with an error status.")

    # ---- case 0: the rig itself --------------------------------------------------------

    def case_rig(self):
        """What the links and the relay give raw: sendfile_server behind each shaped link,
        and the time to first byte of a 1 KiB GET through the relay and without it."""
        log("case 0: the rig's links and round trip")
        blob = os.path.join(self.work, "blob64m")
        with open(blob, "wb") as f:
            f.write(os.urandom(64 * MiB))
        servers = [self.rig.spawn(m, [self.sfs, "5001", blob, IP[m]], ready=None)
                   for m in ("n2", "or")]
        self.wait_listen(CLIENT_NODE, IP["n2"], 5001)
        self.wait_listen(CLIENT_NODE, IP["or"], 5001)
        c = "0 rig check"
        probe_relay = self.presigned_path("probe-1k", IP["or"])
        probe_rgw = self.presigned_path("probe-1k", f"127.0.0.1:{RGW_PORT}")
        for r in range(3):
            for m, what in (("n2", "node link n2 -> n1"), ("or", "origin link -> n1")):
                for conns in (1, 4):
                    d = self.getload(CLIENT_NODE, f"{IP[m]}:5001", "x", "/", conns, 2)
                    self.res.add(c, f"{what}, {conns} conn, raw TCP", "sendfile", "MB/s",
                                 d["bytes"] / d["secs"] / 1e6)
            d = self.getload(CLIENT_NODE, f"{IP['or']}:{S3_PORT}", IP["or"], probe_relay, 1, 11)
            self.res.add(c, "1 KiB GET TTFB, new connection", "via relay", "ms",
                         1000 * d["ttfb"][0])
            self.res.add(c, "1 KiB GET TTFB, keep-alive", "via relay", "ms",
                         1000 * statistics.median(d["ttfb"][1:]))
            d = self.getload("or", f"127.0.0.1:{RGW_PORT}", f"127.0.0.1:{RGW_PORT}", probe_rgw,
                             1, 11)
            self.res.add(c, "1 KiB GET TTFB, new connection", "radosgw alone", "ms",
                         1000 * d["ttfb"][0])
            self.res.add(c, "1 KiB GET TTFB, keep-alive", "radosgw alone", "ms",
                         1000 * statistics.median(d["ttfb"][1:]))
            _, secs, _ = self.client(CLIENT_NODE, [AWS, "s3", "ls", "--endpoint-url",
                                                   ORIGIN_URL, f"s3://{BUCKET}/none/"],
                                     ORIGIN_URL, ok_codes=(0, 1))
            self.res.add(c, "aws cli start-up: `s3 ls` of an empty prefix", "aws-cli", "s",
                         secs)
        for p in servers:
            self.rig.stop(p)
            self.rig.procs.remove(p)
        os.unlink(blob)

    def wait_listen(self, node, ip, port, timeout=10):
        end = time.monotonic() + timeout
        code = f"import socket; socket.create_connection(({ip!r}, {port}), 1)"
        while time.monotonic() < end:
            if self.rig.run(node, [PY, "-c", code], 5).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {ip}:{port}")

    def presigned_path(self, key, host):
        s3 = self.origin.s3(endpoint=f"http://{host}")  # signing only: no connection
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                        ExpiresIn=7200)
        return url[len(f"http://{host}"):]

    def getload(self, node, addr, host, path, conns, reqs, timeout=None):
        p = self.rig.run(node, [self.getload_path, "-d", addr, host, path, str(conns),
                                str(reqs)], timeout or self.plan.client_timeout)
        try:
            d = json.loads(p.stdout)
        except ValueError:
            raise ClientError(f"getload on {node}: {p.stdout} {p.stderr}") from None
        if d["errors"]:
            raise ClientError(f"getload on {node} {addr}{path[:60]}: {d['error']}")
        return d

    # ---- cases 1-3: epochs ------------------------------------------------------------

    def epoch_cmd(self, kind, who):
        nc = os.path.join(HERE, "netclient.py")
        if kind == "boto3":
            return [PY, nc, "boto3", self.endpoint(who), self.shards_man, "16"]
        if kind == "crt":
            return [PY, nc, "crt", self.host(who), self.shards_man]
        return [AWS, "s3", "cp", "--recursive", "--no-progress", "--only-show-errors",
                "--endpoint-url", self.endpoint(who), f"s3://{BUCKET}/shards/",
                os.path.join(self.shm, "shards") + "/"]

    def read_shards(self, kind, who):
        """One epoch over the shards by client kind: (seconds, CPU seconds). boto3 and CRT
        time themselves from their first request; the aws cli is timed from outside, its
        start-up included (case 0 shows how long that is)."""
        if kind != "aws-cli":
            out, _, _ = self.client(CLIENT_NODE, self.epoch_cmd(kind, who),
                                    self.endpoint(who))
            return out["secs"], out["cpu"]
        shutil.rmtree(self.shm, ignore_errors=True)
        os.makedirs(self.shm)
        _, secs, cpu = self.client(CLIENT_NODE, self.epoch_cmd(kind, who),
                                   self.endpoint(who))
        # the files it wrote, checked after the clock stopped
        p = subprocess.run([PY, os.path.join(HERE, "netclient.py"), "files", self.shm,
                            self.shards_man], capture_output=True, text=True, timeout=120)
        if p.returncode:
            raise ClientError(f"aws s3 cp through {who}: {p.stdout} {p.stderr}")
        shutil.rmtree(self.shm, ignore_errors=True)
        return secs, cpu

    def epoch_run(self, case, kind, who):
        mark = self.origin_mark()
        secs, cpu = self.read_shards(kind, who)
        if who != "direct":
            self.wait_fills_idle()
        o = self.origin_since(mark)
        self.res.add(case, "throughput", who, "MB/s", self.shard_bytes / secs / 1e6)
        self.res.add(case, "epoch time", who, "s", secs)
        self.res.add(case, "client CPU", who, "% of 1 core", 100 * cpu / secs)
        self.add_origin_rows(case, who, o, self.shard_bytes)
        return o

    def case_epochs(self):
        for i, kind in enumerate(CLIENTS):
            if kind not in self.plan.clients:
                continue
            case = f"{i + 1} epochs, {kind}"
            log(f"case {i + 1}: {kind}, 40 shards: direct, epoch 1 (cold), epoch 2 (warm)")
            for r in range(self.plan.rounds):
                seq = list(WHO_EPOCH[1:])
                seq.insert(r % 3, "direct")  # direct before, between and after the epochs
                self.evict_all()
                got = {}
                for who in seq:
                    got[who] = self.epoch_run(case, kind, who)
                both = got[WHO_EPOCH[1]]["bytes"] + got[WHO_EPOCH[2]]["bytes"]
                self.res.add(case, "origin bytes per byte read", "epochs 1+2", "x",
                             both / (2 * self.shard_bytes))

    # ---- case 4: pre-staging -------------------------------------------------------------

    def case_prestage(self):
        case = "4 prestaged epoch 1, boto3"
        log(f"case 4: lotactl prestage launched with the job (its first read "
            f"{self.plan.job_start:.0f} s later), against a cold epoch 1")
        for r in range(self.plan.rounds):
            for who in (("cold", "prestaged") if r % 2 == 0 else ("prestaged", "cold")):
                self.prestage_run(case, who)

    def prestage_run(self, case, who):
        """The job (a boto3 process) launched on n1, with `lotactl prestage` launched at the
        same moment or not at all; its first read comes job_start later in both. The job's
        Python start-up is done before the launch: on these two shared cores it would
        stretch while lotad fills, and a real job's start-up (scheduling, framework, model)
        does not wait on the cores lotad uses."""
        self.evict_all()
        mark = self.origin_mark()
        nc = os.path.join(HERE, "netclient.py")
        job = self.rig.spawn(CLIENT_NODE, [PY, nc, "boto3", self.endpoint("lota"),
                                           self.shards_man, "16", "go"],
                             stdin=subprocess.PIPE, env=self.env(self.endpoint("lota")))
        t0 = time.monotonic()
        p = self.start_prestage() if who == "prestaged" else None
        job.stdin.write(f"{t0 + self.plan.job_start!r}\n")
        job.stdin.flush()
        try:
            stdout, stderr = job.communicate(timeout=self.plan.client_timeout)
        finally:
            self.rig.stop(job)
            self.rig.procs.remove(job)
        try:
            d = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            d = {"error": "no JSON"}
        if job.returncode or "error" in d:
            raise ClientError(f"prestage job: exit {job.returncode}: {stdout} {stderr[-2000:]}")
        if p:
            self.finish_prestage(p)
        self.wait_fills_idle()
        o = self.origin_since(mark)
        label = "epoch 1, " + who
        self.res.add(case, "epoch time (first read to last byte)", label, "s", d["secs"])
        self.res.add(case, "job time (launch to last byte)", label, "s",
                     d["t0"] + d["secs"] - t0)
        self.res.add(case, "head start (launch to first read)", label, "s", d["t0"] - t0)
        self.res.add(case, "throughput", label, "MB/s", self.shard_bytes / d["secs"] / 1e6)
        self.add_origin_rows(case, label, o, self.shard_bytes)

    def start_prestage(self):
        out = open(os.path.join(self.work, "prestage.out"), "w")
        with out:
            return self.rig.spawn(CLIENT_NODE, [self.lotactl, "prestage",
                                                f"s3://{BUCKET}/shards/", "--endpoint",
                                                self.endpoint("lota"), "--concurrency", "16"],
                                  ready=None, stdout=out, stderr=subprocess.STDOUT,
                                  env=self.env(self.endpoint("lota")))

    def finish_prestage(self, p):
        rc = p.wait(self.plan.client_timeout)
        self.rig.procs.remove(p)
        if rc:
            with open(os.path.join(self.work, "prestage.out")) as f:
                raise ClientError(f"lotactl prestage: exit {rc}: {f.read()[-2000:]}")

    # ---- case 5: hot object fan-out ------------------------------------------------------

    def case_fanout(self):
        case = "5 hot object fan-out, 3 nodes"
        size = self.model_size
        log(f"case 5: all three nodes read one {size // MiB} MiB object at once "
            f"(owner {self.owner(self.model_key)})")
        self.evict_all()
        self.fanout_check()
        paths = {n: self.presigned_path(self.model_key, IP[n]) for n in NODES}
        for r in range(self.plan.rounds):
            self.evict_all()
            for who in ("cold", "warm"):
                mark = self.origin_mark()
                t = self.fanout_once(paths)
                if who == "cold":
                    self.wait_fills_idle()
                o = self.origin_since(mark)
                wall = max(t.values())
                self.res.add(case, "aggregate throughput", who, "MB/s", 3 * size / wall / 1e6)
                self.res.add(case, "aggregate / one link's rate", who, "x",
                             3 * size / wall / LINK_RATE)
                self.res.add(case, "all done", who, "s", wall)
                own = self.owner(self.model_key)
                self.res.add(case, "owner's own client done", who, "s", t[own])
                self.res.add(case, "slowest other node done", who, "s",
                             max(v for n, v in t.items() if n != own))
                self.add_origin_rows(case, who, o, 3 * size)

    def fanout_once(self, paths):
        """Three getloads (one per node, 1 connection, bodies discarded) started together;
        {node: seconds from the common start to its last byte}."""
        done, errs = {}, []
        t0 = time.monotonic()

        def one(n):
            try:
                d = self.getload(n, f"{IP[n]}:{S3_PORT}", IP[n], paths[n], 1, 1)
                if d["bytes"] != self.model_size:
                    raise ClientError(f"fan-out on {n}: {d['bytes']} bytes, want "
                                      f"{self.model_size}")
                done[n] = time.monotonic() - t0
            except Exception as e:  # raised below, in the caller's thread
                errs.append(e)

        ths = [threading.Thread(target=one, args=(n,)) for n in NODES]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        if errs:
            raise errs[0]
        return done

    def fanout_check(self):
        """Before the timed rounds: the same cold fan-out with boto3 clients that check
        every byte (getload, which times the rounds, discards bodies unread)."""
        nc = os.path.join(HERE, "netclient.py")
        errs = []

        def one(n):
            try:
                self.client(n, [PY, nc, "boto3", f"http://{IP[n]}:{S3_PORT}",
                                self.model_man, "1"], f"http://{IP[n]}:{S3_PORT}")
            except Exception as e:  # raised below
                errs.append(e)

        ths = [threading.Thread(target=one, args=(n,)) for n in NODES]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        if errs:
            raise errs[0]
        self.wait_fills_idle()
        self.notes.append("Case 5: before the timed rounds, a cold fan-out with boto3 "
                          "clients on the three nodes checked every byte (size and CRC-32); "
                          "the timed rounds use getload, which discards bodies in the kernel.")

    # ---- case 6: model load --------------------------------------------------------------

    def case_model(self):
        case = "6 model load (safetensors), boto3"
        log(f"case 6: model load of {self.model_size // MiB} MiB "
            f"(owner {self.owner(self.model_key)}, read from {CLIENT_NODE})")
        nc = os.path.join(HERE, "netclient.py")
        for r in range(self.plan.rounds):
            seq = ["cold", "warm"]
            seq.insert(r % 3, "direct")
            self.evict_all()
            for who in seq:
                mark = self.origin_mark()
                d, secs, cpu = self.client(CLIENT_NODE, [PY, nc, "model", self.endpoint(who),
                                                         self.model_man, self.model_key],
                                           self.endpoint(who))
                if who != "direct":
                    self.wait_fills_idle()
                o = self.origin_since(mark)
                self.res.add(case, "first byte (8-byte length)", who, "ms",
                             1000 * d["first_byte"])
                self.res.add(case, "header parsed", who, "ms", 1000 * d["header"])
                self.res.add(case, "total load", who, "s", d["secs"])
                self.res.add(case, "throughput", who, "MB/s", d["bytes"] / d["secs"] / 1e6)
                self.add_origin_rows(case, who, o, d["bytes"])

    # ---- case 7: one stream -------------------------------------------------------------

    def case_stream(self):
        """One client, one connection, one whole-object GET (what curl or a plain
        get_object does) of an object no node has seen (a new key each round, so lotad
        knows no version of it: the client's own 200 is the first contact). Direct it
        runs at one origin connection's pace; through lotad the 200 fills the first chunk
        and hands off to parallel chunk fills."""
        case = "7 one-stream GET, first contact"
        size = self.model_size
        log(f"case 7: one GET of a new {size // MiB} MiB object on one connection from "
            f"{CLIENT_NODE}: direct, cold, warm")
        data = os.urandom(size)
        for r in range(self.plan.rounds):
            key = f"stream/round-{r}"
            self.in_origin_ns(self.put, key, data)
            paths = {w: self.presigned_path(key, self.host(w)) for w in ("direct", "cold")}
            seq = ["cold", "warm"]
            seq.insert(r % 3, "direct")
            for who in seq:
                mark = self.origin_mark()
                ep = urllib.parse.urlsplit(self.endpoint(who))
                t0 = time.monotonic()
                d = self.getload(CLIENT_NODE, ep.netloc, self.host(who),
                                 paths["direct" if who == "direct" else "cold"], 1, 1)
                secs = time.monotonic() - t0
                if d["bytes"] != size:
                    raise ClientError(f"one-stream GET through {who}: {d['bytes']} bytes, "
                                      f"want {size}")
                if who != "direct":
                    self.wait_fills_idle()
                o = self.origin_since(mark)
                self.res.add(case, "throughput", who, "MB/s", size / secs / 1e6)
                self.add_origin_rows(case, who, o, size)

    # ---- report ----------------------------------------------------------------------------

    def ref_of(self, case, who):
        if case.startswith(("1 ", "2 ", "3 ", "6 ", "7 ")) and who != "direct":
            return "direct"
        if case.startswith("4 ") and who.endswith("prestaged"):
            return "epoch 1, cold"
        return None

    def goals(self):
        R, G = self.res, []

        def g(name, value, ok, how):
            if value is None or value != value:
                G.append((name, "not run", ""))
            else:
                G.append((name, how, "met" if ok else "SHORT"))

        for i, kind in enumerate(CLIENTS):
            c = f"{i + 1} epochs, {kind}"
            d = R.med(c, "throughput", "direct")
            w = R.med(c, "throughput", WHO_EPOCH[2]) / d
            k = R.med(c, "throughput", WHO_EPOCH[1]) / d
            b = R.med(c, "origin bytes per byte read", "epochs 1+2")
            b1 = R.med(c, "origin bytes per byte read", WHO_EPOCH[1])
            g(f"{kind}: warm >= 3x direct", w, w >= 3, f"{w:.2f}x")
            g(f"{kind}: cold >= 0.95x direct", k, k >= 0.95, f"{k:.2f}x")
            g(f"{kind}: origin bytes per byte read <= 1.02 over both epochs", b, b <= 1.02,
              f"{b:.2f} (epoch 1 alone: {b1:.2f})")
        c = "4 prestaged epoch 1, boto3"
        m = "epoch time (first read to last byte)"
        cold, pre = R.med(c, m, "epoch 1, cold"), R.med(c, m, "epoch 1, prestaged")
        gain = 1 - pre / cold
        jc = R.med(c, "job time (launch to last byte)", "epoch 1, cold")
        jp = R.med(c, "job time (launch to last byte)", "epoch 1, prestaged")
        g("prestaged epoch 1: 30-50% faster than cold (the claim we follow)", gain,
          gain >= 0.30, f"{100 * gain:.0f}% faster epoch, {100 * (1 - jp / jc):.0f}% faster job")
        c = "5 hot object fan-out, 3 nodes"
        f = R.med(c, "aggregate / one link's rate", "warm")
        g("fan-out (warm) >= 2.5x one link", f, f >= 2.5, f"{f:.2f}x")
        c = "7 one-stream GET, first contact"
        k = R.med(c, "throughput", "cold") / R.med(c, "throughput", "direct")
        g("one-stream cold GET >= 1.0x direct (parallel chunk fills)", k, k >= 1.0, f"{k:.2f}x")
        return G

    def report(self, started, elapsed):
        R, p = self.res, self.plan
        L = []
        L.append(f"# lota NET benchmark ({'QUICK' if p.quick else 'full'} run)\n")
        L.append(f"Started {started} UTC, {elapsed:.0f} s. {machine()}\n")
        L.append(f"Origin link {ORIGIN_RATE / 1e6:.0f} MB/s out (shared by the nodes), "
                 f"{RTT_MS} ms RTT and at most {CONN_RATE / 1e6:.0f} MB/s per origin connection "
                 f"(delay_relay); node links {LINK_RATE / 1e6:.0f} MB/s each "
                 f"way; {p.shards} shards of {p.shard_size // MiB} MiB "
                 f"({self.shard_bytes / 1e6:.0f} MB), model / hot object "
                 f"{self.model_size / 1e6:.0f} MB. {p.rounds} interleaved rounds per case "
                 "(case 0: 3); median [min-max]; ratio = the row's median / the reference's "
                 "(direct; case 4: the cold epoch 1).\n")
        L.append("| case | metric | who | median | min-max | n | ratio |")
        L.append("|---|---|---|---|---|---|---|")
        rows = [["case", "metric", "who", "unit", "median", "min", "max", "n", "values"]]
        for case, metric, who, unit, vals in sorted(R.rows, key=lambda r: r[0][:1]):
            med = statistics.median(vals)
            ref = self.ref_of(case, who)
            ratio = ""
            if ref and R.get(case, metric, ref) and R.med(case, metric, ref):
                ratio = f"{med / R.med(case, metric, ref):.2f}x"
            L.append(f"| {case} | {metric} | {who} | {fmt(med)} {unit} | "
                     f"{fmt(min(vals))}-{fmt(max(vals))} | {len(vals)} | {ratio} |")
            rows.append([case, metric, who, unit, f"{med:.6g}", f"{min(vals):.6g}",
                         f"{max(vals):.6g}", len(vals), " ".join(f"{v:.6g}" for v in vals)])
        L.append("\n## Goals (issue 16)\n")
        L.append("| goal | measured | |")
        L.append("|---|---|---|")
        for name, how, verdict in self.goals():
            L.append(f"| {name} | {how} | {verdict} |")
        L.append("\n## Notes\n")
        for n in self.static_notes() + self.notes:
            L.append(f"- {n}")
        return "\n".join(L) + "\n", rows

    def process_states(self):
        """What each process of the rig is doing, for a failure's report."""
        out = []
        for n, d in self.lotad.items():
            rc = d.proc.poll() if d.proc else "never started"
            out.append(f"lotad {n} (pid {d.proc.pid if d.proc else '-'}): "
                       f"{'running' if rc is None else f'exited {rc}'}")
        if getattr(self, "relay", None):
            rc = self.relay.poll()
            out.append(f"delay_relay: {'running' if rc is None else f'exited {rc}'}")
        if self.origin:
            out.append(f"origin daemons: {self.origin.pids()}")
        return "\n".join(out)

    def link_notes(self, stats):
        """The shaped fifos' totals: how much each link carried and dropped."""
        parts = [f"{m} {way} {sent / 1e9:.1f} GB ({drop} dropped)"
                 for (m, way), (sent, drop) in sorted(stats.items())]
        self.notes.append("Link totals over the run (bytes sent through each shaped fifo, "
                          "packets it dropped): " + ", ".join(parts) + ".")

    def static_notes(self):
        owned = {n: sum(o == n for o in self.shard_owners.values()) for n in NODES}
        return [
            f"Placement (HRW over the three peers): the shards' owners are n1 {owned['n1']}, "
            f"n2 {owned['n2']}, n3 {owned['n3']}; the job runs on {CLIENT_NODE}, so "
            f"{owned['n1']} of {self.plan.shards} shards are local and the rest cross a "
            f"node link. The model / hot object is owned by {self.owner(self.model_key)}.",
            "who: direct = the client on n1 reading the origin through its link and the "
            "relay; epoch 1 = the first read through n1's lotad after every node's cache "
            "was emptied (lotactl evict --all on each); epoch 2 = the same read again. "
            "lotad: cluster mode (peers, self, peer-listen, cluster-secret), strong "
            "consistency (every read asks the origin), workers=2, bpf=off, "
            "service-credentials for chunk fills (16 MiB chunks).",
            "Origin bytes: body bytes of GETs answered 200/206 in radosgw's log between "
            "the start of a run and the end of every fill it started (background fills "
            "included); requests = every logged request (304 revalidations included).",
            "Clients: boto3 1.26 get_object, 16 threads, 1 MiB reads with CRC-32 of every "
            "body; aws cli 2.9 `s3 cp --recursive` with its defaults (10 requests at once, "
            "8 MiB parts above 8 MiB), wall time including its start-up, files on tmpfs "
            "checked after the clock stops; awscrt 0.16.8 S3Client (8 MiB parts, its own "
            "connection count), all 40 GETs at once, CRC-32 of every body.",
            "Client CPU: the client process's user+system CPU over its wall time; the client "
            "and the three lotads share the machine's 2 cores with radosgw, the relay and "
            "the shaping, so a CPU-bound client caps the warm rows.",
            "The relay delays every byte by RTT/2 each way and a connection's first request "
            "by one more RTT (the handshake); the TCP flows themselves run over "
            "sub-millisecond veths, so slow start and window growth over a 20 ms path are "
            "not modelled: a real link would make cold and direct reads slower, not faster.",
        ]


class ClientError(RuntimeError):
    pass


def safetensors_blob(n_tensors, tensor_size):
    """A safetensors file: 8-byte little-endian header length, a JSON header (padded with
    spaces to 8 bytes), then the tensors' bytes (random)."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for i in range(n_tensors):
        header[f"layers.{i}.weight"] = {"dtype": "BF16", "shape": [1024, tensor_size // 2048],
                                        "data_offsets": [off, off + tensor_size]}
        off += tensor_size
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return len(h).to_bytes(8, "little") + h + os.urandom(off)


# -- main ----------------------------------------------------------------------------------

def guard_signals(plan):
    def stop(sig, frame):
        raise KeyboardInterrupt(f"signal {sig}")

    def too_long(sig, frame):
        raise Timeout(f"the run passed its {plan.limit_s} s bound")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    signal.signal(signal.SIGALRM, too_long)
    signal.alarm(plan.limit_s - 30)  # leaves time to tear down


@contextlib.contextmanager
def quiet_signals():
    """Teardown is not interrupted by a second Ctrl-C or the time bound."""
    signal.alarm(0)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM,
                                                          signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def write_results(b, md, rows, started, quick):
    from netcharts import draw_all

    out = os.path.join(HERE, "results")
    stamp = "net-" + started.strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")
    d = os.path.join(out, stamp)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write(md)
    with open(os.path.join(d, "results.csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with open(os.path.join(d, "meta.json"), "w") as f:  # for netcharts.py DIR
        json.dump({"model_size": b.model_size, "consts": CONSTS,
                   "plan": {"shards": b.plan.shards, "job_start": b.plan.job_start}}, f)
    charts = draw_all(b, d, CONSTS)
    with open(os.path.join(out, "net-latest.md"), "w") as f:
        f.write(md.replace("](", f"]({stamp}/"))
    log(f"results: {d}/ (report.md, results.csv, {len(charts)} charts), {out}/net-latest.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("QUICK", "") not in ("", "0"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--cases", default="rig,epochs,prestage,fanout,model,stream")
    ap.add_argument("--clients", default=",".join(CLIENTS), help="epochs: these clients")
    ap.add_argument("--rounds", type=int, help="rounds per case instead of the plan's")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench NET: needs root (network namespaces, tc)")
    for exe in ("nsenter", "tc", "ip", "gnuplot", "cc", AWS, PY):
        if not shutil.which(exe):
            sys.exit(f"bench NET: {exe} not found (scripts/deps.sh installs it)")
    os.environ["LOTA_BUILD"] = os.path.abspath(args.build)
    plan = Plan(args.quick)
    plan.rounds = args.rounds or plan.rounds
    plan.clients = [c for c in CLIENTS if c in args.clients.split(",")]
    started = datetime.datetime.utcnow()
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="lota-benchnet-")
    b = NetBench(args.build, plan, work)
    b.keep = args.keep
    failed = None
    guard_signals(plan)
    rig = Rig(ORIGIN_RATE, LINK_RATE)
    try:
        b.compile()
        rig.__enter__()
        b.setup(rig)
        for name in args.cases.split(","):
            getattr(b, "case_" + name)()
        b.link_notes(rig.qdisc_stats())
    except BaseException as e:
        failed = e
        log(traceback.format_exc())
        with contextlib.suppress(Exception):
            log(b.process_states())
    finally:
        with quiet_signals():
            rig.__exit__(None, None, None)
            shutil.rmtree(b.shm, ignore_errors=True)
            if args.keep:
                log(f"work directory kept: {work}")
            elif failed is not None:  # the logs for a post-mortem, not the caches
                for n in NODES:
                    shutil.rmtree(os.path.join(work, "lotad-" + n, "cache"), ignore_errors=True)
                log(f"logs kept: {work}/lotad-n*/lotad.log")
            else:
                shutil.rmtree(work, ignore_errors=True)
    if failed is not None:
        log(f"bench NET: stopped: {type(failed).__name__}: {failed}")
        with contextlib.suppress(Exception):
            log(b.report(started.strftime("%Y-%m-%d %H:%M"), time.monotonic() - t0)[0])
        sys.exit(1)
    md, rows = b.report(started.strftime("%Y-%m-%d %H:%M"), time.monotonic() - t0)
    print(md)
    write_results(b, md, rows, started, plan.quick)


if __name__ == "__main__":
    main()
