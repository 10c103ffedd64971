"""Cases 10 and 11 of the benchmark suite (issue 12): what real readers cost through lotad
against the same read straight from the origin, cold (an object lotad has never seen: a
fresh server-side copy per round) and warm, with the origin's bytes per byte read.

    10  `aws s3 cp` (aws cli v2: a HEAD, then 8 MiB ranged GETs on 10 threads) of a
        512 MiB object, written to /dev/shm; lotad's copy is checked byte for byte.
    11  one full GET of an 8 MiB object (LMCache's KV chunk size) on one connection
        (getload): time to first byte and total.

Rounds are interleaved (cold, origin, warm rotated; warm always after its cold) and each
lotad read of a cold copy is followed by a wait for its chunk commits, so the next
measurement does not share the machine with them."""
import hashlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

MiB = 1 << 20
BUCKET = "bench"
HOST = "cwlota.com"
AWS_CASE = "10 aws s3 cp 512 MiB"
KV_CASE = "11 full GET 8 MiB, 1 conn"
ORDERS = (("cold", "origin", "warm"), ("origin", "cold", "warm"), ("cold", "warm", "origin"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * MiB), b""):
            h.update(block)
    return h.hexdigest()


class ReadCases:
    def __init__(self, bench):
        self.b = bench
        self.res = bench.res
        self.rounds = bench.plan.rounds
        self.origin = bench.origin

    def _copies(self, source, prefix):
        s3 = self.origin.s3()
        for r in range(self.rounds):
            s3.copy_object(Bucket=BUCKET, Key=f"{prefix}-{r}",
                           CopySource={"Bucket": BUCKET, "Key": source})

    def _origin_bytes(self, key, mark, size):
        return self.origin.body_bytes("GET", f"/{BUCKET}/{key}", since=mark) / size

    # ---- case 10 ---------------------------------------------------------------------

    def _aws_cp(self, endpoint, key, out):
        import clients

        env = clients.aws_env(self.origin.access_key, self.origin.secret_key)
        t0 = time.monotonic()
        clients.aws(["s3", "cp", "--quiet", f"s3://{BUCKET}/{key}", out], endpoint, env,
                    names=(HOST,), timeout=600)
        return time.monotonic() - t0

    def aws_copy(self):
        log("case 10: aws s3 cp of a 512 MiB object, cold and warm through lotad, origin direct")
        size = 512 * MiB
        body = self.b.hot + os.urandom(256 * MiB)
        want = hashlib.sha256(body).hexdigest()
        self.origin.s3().put_object(Bucket=BUCKET, Key="big512", Body=body)
        del body
        self._copies("big512", "cp-lotad")
        self._copies("big512", "cp-origin")  # the origin's first read of a copy, too
        out = f"/dev/shm/lota-bench-aws-{os.getpid()}"
        lotad_ep = f"http://{HOST}:{self.b.lotad.port}"
        origin_ep = f"http://127.0.0.1:{self.origin.port}"
        wrong = []
        try:
            for r in range(self.rounds):
                key = f"cp-lotad-{r}"
                for kind in ORDERS[r % len(ORDERS)]:
                    mark = self.origin.log_mark()
                    if kind == "origin":
                        secs = self._aws_cp(origin_ep, f"cp-origin-{r}", out)
                        self.res.add(AWS_CASE, "copy time", "origin", "s", secs)
                        continue
                    secs = self._aws_cp(lotad_ep, key, out)
                    who = "lotad" if kind == "cold" else "lotad warm"
                    self.res.add(AWS_CASE, "copy time", who, "s", secs)
                    self.res.add(AWS_CASE, "origin bytes per byte", who, "x",
                                 self._origin_bytes(key, mark, size))
                    if sha256_file(out) != want:
                        wrong.append(f"{kind} {key}")
                    self.b._settled(self.b.lotad)
        finally:
            if os.path.exists(out):
                os.unlink(out)
        if wrong:
            raise RuntimeError(f"case 10: lotad's copy differs from the object: {wrong}")
        self.res.notes.append(
            "Case 10: /usr/bin/aws s3 cp --quiet (defaults: 8 MiB parts, 10 threads) to "
            "/dev/shm, process start included for both; 'lotad' is a copy lotad never saw "
            "(a fresh server-side copy per round), 'lotad warm' the same copy again, "
            "'origin' another fresh copy per round (radosgw's first read of it); every "
            "lotad copy was compared byte for byte (sha256) with the object. Origin bytes per "
            "byte: 2xx GET body bytes the origin logged for the key / 512 MiB.")

    # ---- case 11 ---------------------------------------------------------------------

    def kv_object(self):
        log("case 11: full GET of an 8 MiB object, cold and warm through lotad, origin direct")
        size = 8 * MiB
        self.origin.s3().put_object(Bucket=BUCKET, Key="kv8m", Body=self.b.hot[:size])
        self._copies("kv8m", "kv-lotad")
        self._copies("kv8m", "kv-origin")
        for r in range(self.rounds):
            key = f"kv-lotad-{r}"
            for kind in ORDERS[r % len(ORDERS)]:
                ep = self.b.ep["origin" if kind == "origin" else "lotad"]
                who = {"cold": "lotad", "warm": "lotad warm", "origin": "origin"}[kind]
                mark = self.origin.log_mark()
                d = self.b.load(ep, f"kv-origin-{r}" if kind == "origin" else key, 1, 1)
                self.res.add(KV_CASE, "TTFB", who, "ms", 1000 * d["ttfb"][0])
                self.res.add(KV_CASE, "total", who, "ms", 1000 * d["lat"][0])
                if kind != "origin":
                    self.res.add(KV_CASE, "origin bytes per byte", who, "x",
                                 self._origin_bytes(key, mark, size))
                    self.b._settled(self.b.lotad)
        self.res.notes.append(
            "Case 11: getload, one connection, one GET of a presigned URL; total = first "
            "byte of the request to last byte of the body, connect excluded; 'lotad' reads a "
            "fresh server-side copy per round, 'origin' another (radosgw's first read of "
            "each, as lotad's cold read is).")
