"""A real S3 origin for end-to-end tests: a throwaway Ceph cluster + radosgw started by
scripts/origin.sh (the one implementation), plus what a test needs against it: boto3
clients, users, bucket policies, and the radosgw request log parsed into lines, so a test
can say "the origin sent N bytes of body for GET /bkt/key".

Runs under Debian's /usr/bin/python3 (python3-boto3). Typical use:

    o = Origin(tmp_dir)          # ports picked free on 127.0.0.1
    o.start()
    s3 = o.s3()
    mark = o.log_mark()
    ...
    assert o.body_bytes("GET", "/bkt/key", since=mark) == size
    o.stop()

What radosgw 16.2.15 does that a test may trip on:
- Host: cwlota.com or an IP is path-style; Host: B.cwlota.com[:port] is bucket B, and
  then the log shows the path without the bucket ("GET /key"); any other Host name is
  taken as a bucket name too (CNAME style), so a proxy must keep a sane Host.
- A PUT without Content-Length (chunked) gets 411 MissingContentLength.
- Expect: 100-continue is honoured ("HTTP/1.1 100 CONTINUE").
- CompleteMultipartUpload answers <ETag></ETag> (empty); HEAD/GET give "md5-of-md5s-N".
- ?partNumber=N is ignored: the whole object comes back.
- A beast line is written when the request ends: lines are in completion order, the
  [time] in them is when the request started.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.parse
from collections import namedtuple

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORIGIN_SH = os.path.join(TOP, "scripts", "origin.sh")
REGION = "us-east-1"
START_TIMEOUT = 90

# One beast line per request (debug_rgw >= 1):
# ... 1 beast: 0x7f..: 127.0.0.1 - lotademo [22/Nov/2026:00:55:09.146 +0000]
#   "PUT /bkt/f10?partNumber=1 HTTP/1.1" 200 8388608 - "aws-cli/2.9" - latency=0.14s
# (the field before latency is the request's Range header, or -).
# The byte count is the body radosgw sent (GET: the object bytes written, 206: the range;
# an error: its XML), except that a successful PUT reports the body bytes it received.
_BEAST = re.compile(
    r' beast: \S+ (?P<client>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: \S+ (?:"(?P<agent>[^"]*)"|-) (?P<range>\S+) latency=(?P<latency>[\d.]+)s)?')

Request = namedtuple(
    "Request", "method path query status bytes range user client agent latency target line")


def free_ports(n=1, bind="127.0.0.1"):
    """n distinct TCP ports free on bind right now (all held open together while picking,
    so they differ; another process may still take one before the caller binds it)."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.bind((bind, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(bind="127.0.0.1"):
    return free_ports(1, bind)[0]


def parse_beast_line(line):
    """A Request for one rgw log line, or None when it is not a beast access line."""
    m = _BEAST.search(line.rstrip("\n"))
    if not m:
        return None
    target = m.group("target")
    path, _, query = target.partition("?")
    nbytes = m.group("bytes")
    latency = m.group("latency")
    rng = m.group("range")
    return Request(m.group("method"), urllib.parse.unquote(path), query,
                   int(m.group("status")), 0 if nbytes == "-" else int(nbytes),
                   None if rng in (None, "-") else rng, m.group("user"), m.group("client"), m.group("agent"),
                   float(latency) if latency else None, target, line.rstrip("\n"))


def _unsigned_payload_auth():
    from botocore.auth import S3SigV4Auth

    class UnsignedPayloadAuth(S3SigV4Auth):
        # botocore hashes the payload of every plain-HTTP request; a streamed body
        # must go out as UNSIGNED-PAYLOAD instead.
        def _should_sha256_sign_payload(self, request):
            return False

    return UnsignedPayloadAuth


class OriginError(RuntimeError):
    pass


class Origin:
    """One origin: mon + OSD + radosgw under dir, S3 at http://bind:port.

    netns: run origin.sh inside `ip netns exec NETNS` (bind is then an address of that
    namespace; the caller brings its loopback up)."""

    def __init__(self, dir, port=None, bind="127.0.0.1", mon_port=None, netns=None,
                 mem_gib=None):
        self.dir = os.path.abspath(str(dir))
        self.bind = bind
        self.netns = netns
        self.mem_gib = mem_gib
        if port is None or mon_port is None:
            picked = free_ports(2, bind) if netns is None else [7480, 3300]
            port = port or picked[0]
            mon_port = mon_port or picked[1]
        self.port = port
        self.mon_port = mon_port
        self.env = {}
        self.access_key = None
        self.secret_key = None
        self.url = None
        self.log_path = None
        self._users = {}

    # -- lifecycle ------------------------------------------------------------------

    def _run(self, *args, timeout=60):
        cmd = [ORIGIN_SH, *args]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise OriginError(f"{shlex.join(cmd)}: no answer after {timeout}s:\n"
                              f"{e.stderr or ''}") from None
        if p.returncode != 0:
            raise OriginError(f"{shlex.join(cmd)}: exit {p.returncode}:\n{p.stderr}")
        return p.stdout

    def start(self):
        args = ["start", self.dir, "--port", str(self.port), "--bind", self.bind,
                "--mon-port", str(self.mon_port)]
        if self.mem_gib:
            args += ["--mem-gib", str(self.mem_gib)]
        out = self._run(*args, timeout=START_TIMEOUT)
        self.env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.url = self.env["ORIGIN_URL"]
        self.access_key = self.env["AWS_ACCESS_KEY_ID"]
        self.secret_key = self.env["AWS_SECRET_ACCESS_KEY"]
        self.log_path = self.env["ORIGIN_LOG"]
        self._users = {self.access_key: self.secret_key}
        return self

    def stop(self):
        self._run("stop", self.dir)
        self.url = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def pids(self):
        """{"mon": pid, "osd": pid, "radosgw": pid} of the running daemons."""
        out = {}
        for name in ("mon", "osd", "radosgw"):
            try:
                with open(os.path.join(self.dir, "run", name + ".pid")) as f:
                    out[name] = int(f.read())
            except (OSError, ValueError):
                pass
        return out

    def restart_radosgw(self, timeout=60):
        """Starts radosgw again, as origin.sh starts it (same config, port and user), after
        a test killed it: the mon and the OSD kept running, so the objects are still there."""
        conf = os.path.join(self.dir, "ceph.conf")
        cmd = ["radosgw", "-n", "client.rgw", "-c", conf, "-f"]  # in a session of its own
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        with open(os.path.join(self.dir, "log", "radosgw.out"), "ab") as out:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True)
        with open(os.path.join(self.dir, "run", "radosgw.pid"), "w") as f:
            f.write(str(p.pid))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if p.poll() is not None:
                raise OriginError(f"radosgw exited {p.returncode} on restart:\n"
                                  f"{self.log_tail()}")
            try:
                with socket.create_connection((self.bind, self.port), timeout=1) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b"x-amz-request-id" in s.recv(4096).lower():
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise OriginError(f"radosgw not answering {timeout}s after a restart")

    def rss_kib(self):
        """{"mon": KiB, ...}: resident memory of each daemon."""
        out = {}
        for name, pid in self.pids().items():
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out[name] = int(line.split()[1])
        return out

    # -- users and clients ----------------------------------------------------------

    def create_user(self, name, access=None, secret=None):
        """Create radosgw user name; returns (access, secret)."""
        access = access or f"{name}-access"
        secret = secret or f"{name}-secret"
        self._run("user", self.dir, name, access, secret)
        self._users[access] = secret
        return access, secret

    def s3(self, access=None, secret=None, endpoint=None, **config):
        """A boto3 S3 client: path-style, SigV4, us-east-1, no retries.
        access alone picks a user created here; extra keywords go to botocore Config."""
        import boto3
        from botocore.config import Config

        access = access or self.access_key
        secret = secret or self._users.get(access)
        cfg = dict(signature_version="s3v4", s3={"addressing_style": "path"},
                   retries={"max_attempts": 1, "mode": "standard"},
                   connect_timeout=5, read_timeout=120)
        cfg.update(config)
        return boto3.session.Session().client(
            "s3", region_name=REGION, endpoint_url=endpoint or self.url,
            aws_access_key_id=access, aws_secret_access_key=secret,
            config=Config(**cfg))

    def client_env(self, access=None, secret=None, endpoint=None):
        """Environment for a subprocess client (aws cli, curl --aws-sigv4 wrappers)."""
        access = access or self.access_key
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=access,
                   AWS_SECRET_ACCESS_KEY=secret or self._users.get(access),
                   AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=endpoint or self.url)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "http_proxy", "HTTP_PROXY"):
            env.pop(k, None)
        return env

    def create_bucket(self, bucket, client=None):
        (client or self.s3()).create_bucket(Bucket=bucket)
        return bucket

    def set_bucket_policy(self, bucket, policy, client=None):
        """policy: a dict (or JSON text); set by the bucket's owner (default user)."""
        if not isinstance(policy, str):
            policy = json.dumps(policy)
        (client or self.s3()).put_bucket_policy(Bucket=bucket, Policy=policy)

    @staticmethod
    def policy_allow(user, bucket, prefix="", actions=("s3:GetObject",)):
        """A policy statement list granting radosgw user `user` actions on bucket/prefix*."""
        return {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam:::user/{user}"]},
                "Action": list(actions),
                "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
            }],
        }

    def presign(self, bucket, key, method="get_object", expires=600, client=None,
                **params):
        return (client or self.s3()).generate_presigned_url(
            method, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires)

    def signed_headers(self, method, bucket, key="", headers=None, access=None,
                       secret=None, endpoint=None, query=""):
        """(url, headers) for a SigV4 header-signed request with an unsigned payload,
        for tests that drive HTTP themselves (raw http.client, curl, streaming bodies).
        Headers added to the dict afterwards stay unsigned."""
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        access = access or self.access_key
        secret = secret or self._users.get(access)
        path = "/" + bucket + ("/" + urllib.parse.quote(key) if key else "")
        url = (endpoint or self.url) + path + ("?" + query if query else "")
        req = AWSRequest(method=method, url=url, headers=dict(headers or {}))
        _unsigned_payload_auth()(Credentials(access, secret), "s3", REGION).add_auth(req)
        return url, dict(req.headers.items())

    # -- the request log ------------------------------------------------------------

    def log_mark(self):
        """An offset into the rgw log: pass as since= to see only later requests."""
        self._settle_log()
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def _settle_log(self, quiet=0.05, timeout=2.0):
        # radosgw writes its log from a separate thread: wait until the file stops
        # growing, so the line of a request that just completed is there to read.
        end = time.monotonic() + timeout
        last = -1
        while time.monotonic() < end:
            size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            if size == last:
                return
            last = size
            time.sleep(quiet)

    def log_requests(self, since=0, method=None, path=None, settle=True):
        """Parsed beast lines (Request tuples) logged after offset since, optionally only
        those with this method and/or path (path without the query, unquoted)."""
        if settle:
            self._settle_log()
        out = []
        with open(self.log_path, "rb") as f:
            f.seek(since)
            for raw in f:
                if b" beast: " not in raw:
                    continue
                r = parse_beast_line(raw.decode("utf-8", "replace"))
                if r and (method is None or r.method == method) and \
                        (path is None or r.path == path):
                    out.append(r)
        return out

    def body_bytes(self, method, path, since=0):
        """Total body bytes the origin logged for successful method path requests."""
        return sum(r.bytes for r in self.log_requests(since, method, path)
                   if 200 <= r.status < 300)

    def log_tail(self, n=30):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
