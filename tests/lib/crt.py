"""The AWS CRT S3 client (Debian's python3-awscrt 0.16.8, what LMCache's S3 backend uses)
as a test client. Its S3Client has no endpoint option and ignores a port in Host: it
connects to port 80 of whatever `cwlota.com` resolves to. So a CrtEndpoint makes a network
namespace with one address from 198.18.0.0/15 on its loopback and a relay (relay.py) on
that address's port 80 to the lotad (or origin) under test; the client runs as a
subprocess in that namespace, with cwlota.com resolving to the address through a private
hosts file in a private mount namespace. The machine's network and /etc/hosts are never
touched; the relay records every exchange (ranges, If-Match, statuses, body hashes).

    with CrtEndpoint(("127.0.0.1", lotad.port)) as ep:
        n = crt_download(ep.ip, bucket, key, dest, access, secret)
        parts = ep.relay.exchanges()

Run as a script (`crt.py download|upload ...`, credentials in CRT_ACCESS/CRT_SECRET) it is
the client itself; the test process only builds the command."""

import json
import os
import subprocess
import sys
import threading
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's: it sees python3-awscrt
HOST = "cwlota.com"
REGION = "us-east-1"
MiB = 1024 * 1024
PART = 8 * MiB

_lock = threading.Lock()
_endpoints = {}  # ip -> CrtEndpoint
_serial = [0]


class CrtError(RuntimeError):
    pass


# -- the test process's side ----------------------------------------------------------------

class CrtEndpoint:
    """cwlota.com:80 for the CRT client: a namespace whose loopback holds ip (from
    198.18.0.0/15), a relay on ip:80 to target (host, port) in the test's namespace.
    rate paces the target's answers (relay.Relay's rate)."""

    def __init__(self, target, ip=None, rate=None):
        with _lock:
            _serial[0] += 1
            n = _serial[0]
        self.netns = f"lcrt-{os.getpid()}-{n}"
        self.ip = ip or f"198.18.{80 + n // 250}.{1 + n % 250}"
        self.target = tuple(target)
        self.rate = rate
        self.relay = None
        self._made = False

    def start(self):
        from cluster import sh
        from relay import Relay

        sh("ip", "netns", "add", self.netns)
        self._made = True
        try:
            sh("ip", "-n", self.netns, "link", "set", "lo", "up")
            sh("ip", "-n", self.netns, "addr", "add", f"{self.ip}/32", "dev", "lo")
            self.relay = Relay((self.ip, 80), self.target, netns=self.netns,
                               rate=self.rate).start()
        except BaseException:
            self.stop()
            raise
        with _lock:
            _endpoints[self.ip] = self
        return self

    def stop(self):
        from cluster import sh

        with _lock:
            _endpoints.pop(self.ip, None)
        if self.relay:
            self.relay.stop()
            self.relay = None
        if self._made:
            sh("ip", "netns", "del", self.netns, check=False)
            self._made = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def command(self, args):
        """argv running this file as the client inside the namespace, cwlota.com -> ip."""
        from clients import in_private_hosts

        inner = ["nsenter", f"--net=/run/netns/{self.netns}", PYTHON,
                 os.path.abspath(__file__), *args]
        return in_private_hosts(inner, [HOST], self.ip)


def _endpoint(ep):
    if isinstance(ep, CrtEndpoint):
        return ep
    with _lock:
        found = _endpoints.get(ep)
    if not found:
        raise CrtError(f"no CrtEndpoint started on {ep}")
    return found


def crt_run(endpoint_ip, op, bucket, key, path, access, secret, part_size=PART, timeout=300,
            headers=()):
    """Runs the client once: op is "download" (to path) or "upload" (from path). Returns
    its report: {"ok", "status", "error", "headers", "bytes"}."""
    ep = _endpoint(endpoint_ip)
    spec = json.dumps({"op": op, "bucket": bucket, "key": key, "path": str(path),
                       "part_size": part_size, "headers": list(headers),
                       "timeout": timeout})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(CRT_ACCESS=access, CRT_SECRET=secret)
    try:
        p = subprocess.run(ep.command([spec]), env=env, capture_output=True,
                           timeout=timeout + 30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CrtError(f"CRT {op} s3://{bucket}/{key}: no end after {timeout + 30}s") from None
    out = p.stdout.decode(errors="replace").strip().splitlines()
    try:
        report = json.loads(out[-1])
    except (IndexError, ValueError):
        raise CrtError(f"CRT {op} exited {p.returncode} without a report:\n"
                       f"{p.stderr.decode(errors='replace')[-3000:]}") from None
    report["stderr"] = p.stderr.decode(errors="replace")[-3000:]
    return report


def crt_download(endpoint_ip, bucket, key, dest, access, secret, part_size=PART, timeout=300):
    """Downloads s3://bucket/key to dest with the CRT client through the CrtEndpoint at
    endpoint_ip (its ip or itself); returns the bytes written. Raises CrtError if the
    client reports a failure."""
    r = crt_run(endpoint_ip, "download", bucket, key, dest, access, secret, part_size,
                timeout)
    if not r["ok"]:
        raise CrtError(f"CRT download s3://{bucket}/{key}: {r['error']} (status "
                       f"{r['status']})\n{r['stderr']}")
    return os.path.getsize(dest)


def crt_upload(endpoint_ip, bucket, key, src, access, secret, part_size=PART, timeout=300):
    """Uploads the file src to s3://bucket/key with the CRT client (multipart above
    part_size); returns the response's status."""
    r = crt_run(endpoint_ip, "upload", bucket, key, src, access, secret, part_size, timeout)
    if not r["ok"]:
        raise CrtError(f"CRT upload s3://{bucket}/{key}: {r['error']} (status "
                       f"{r['status']})\n{r['stderr']}")
    return r["status"]


# -- the client's side (this file run as a script) ------------------------------------------

def _drive(spec):
    from awscrt import auth, http, io, s3

    elg = io.EventLoopGroup(2)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    creds = auth.AwsCredentialsProvider.new_static(os.environ["CRT_ACCESS"],
                                                   os.environ["CRT_SECRET"])
    client = s3.S3Client(bootstrap=bootstrap, region=REGION, credential_provider=creds,
                         tls_mode=s3.S3RequestTlsMode.DISABLED, part_size=spec["part_size"])
    target = "/" + spec["bucket"] + "/" + urllib.parse.quote(spec["key"])
    hdrs = http.HttpHeaders([("Host", HOST)] + [tuple(h) for h in spec["headers"]])
    report = {"ok": False, "status": None, "error": None, "headers": None}

    def on_headers(status_code, headers, **kw):
        report["status"] = status_code
        report["headers"] = [list(h) for h in headers]

    if spec["op"] == "download":
        req = http.HttpRequest("GET", target, hdrs)
        kind, files = s3.S3RequestType.GET_OBJECT, {"recv_filepath": spec["path"]}
    else:
        hdrs.add("Content-Length", str(os.path.getsize(spec["path"])))
        hdrs.add("Content-Type", "application/octet-stream")
        req = http.HttpRequest("PUT", target, hdrs)
        kind, files = s3.S3RequestType.PUT_OBJECT, {"send_filepath": spec["path"]}
    r = client.make_request(request=req, type=kind, on_headers=on_headers, **files)
    try:
        r.finished_future.result(spec["timeout"])
        report["ok"] = True
    except Exception as e:  # the report says what went wrong
        report["error"] = f"{type(e).__name__}: {e}"
    if spec["op"] == "download" and os.path.exists(spec["path"]):
        report["bytes"] = os.path.getsize(spec["path"])
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(_drive(json.loads(sys.argv[1])))
