#!/usr/bin/python3
"""SSE-C hits against plain hits (issue 14): one lotad in front of a real radosgw holds a
256 MiB object cached plain (sent by sendfile) and one cached sealed (opened in user space,
AES-256-GCM); getload reads each warm over one connection, in interleaved rounds, and the
medians (min-max) of GB/s are printed. Every request still asks the origin (a 304).
Then cold ranged SSE-C reads (the first 64 MiB of the sealed object, nothing of it
cached): through a lotad with service credentials, which validates the client's request
(a 304) and serves the range from chunks it fills with the reader's key, against the same
read relayed by a lotad without them (the origin's 206 streamed through), and against the
plain object's filled by the first lotad, interleaved.

    /usr/bin/python3 tests/bench/ssec.py [--build build] [--rounds 5] [--reqs 4]

Everything runs on loopback and stops by itself; not in `make bench`'s default cases."""

import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

MiB = 1 << 20
SIZE = 256 * MiB
BUCKET = "bench-ssec"
SSEC = "x-amz-server-side-encryption-customer-"


def wait_committed(d, n, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if d.metrics().get("cache_fills_committed", 0) >= n:
            return
        time.sleep(0.1)
    raise RuntimeError("fills not committed:\n" + d.log_tail())


def cpu_secs(pid):
    """User + system CPU seconds of process pid so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def getload(exe, d, url, conns, reqs, extra=()):
    u = urllib.parse.urlsplit(url)
    path = u.path + ("?" + u.query if u.query else "")
    cmd = [exe, "-d", *[x for h in extra for x in ("-H", h)], f"127.0.0.1:{d.port}",
           u.netloc, path, str(conns), str(reqs)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    r = json.loads(p.stdout, strict=False)
    if r["errors"]:
        raise RuntimeError(f"getload: {r['error']}")
    return r["bytes"] / r["secs"] / 1e9, r["bytes"]


COLD_RANGE = 64 * MiB


def cold_ranged(exe, origin, work, d, urls, hdrs, rounds):
    """GB/s of a cold ranged read of the sealed object filled by lotad, of the same read
    relayed (d: the lotad without service credentials), and of the plain object's filled,
    for each round; lotad's CPU seconds per GiB of each (commits and evictions included)."""
    from lotad import Lotad
    creds = os.path.join(work, "service-credentials")
    with open(creds, "w") as f:
        f.write(f"[default]\naws_access_key_id = {origin.access_key}\n"
                f"aws_secret_access_key = {origin.secret_key}\n")
    f = Lotad(os.path.join(work, "lotad-fill"), origin.url, workers=1,
              service_credentials=creds).start()
    rng = f"Range: bytes=0-{COLD_RANGE - 1}"
    cases = ["filled", "relayed", "plain filled"]
    res = {k: [] for k in cases}
    cpu = {k: 0.0 for k in cases}
    try:
        for r in range(rounds):
            for k in cases[r % 3:] + cases[:r % 3]:
                via = d if k == "relayed" else f
                if via is f:
                    f.post("/admin/evict?all=1")
                    committed = f.metrics().get("cache_fills_committed", 0)
                    misses = f.metrics().get("cache_misses", 0)
                c0 = cpu_secs(via.proc.pid)
                gbs, _ = getload(exe, via, urls["plain" if k == "plain filled" else "sealed"], 1,
                                 1, [rng] + ([] if k == "plain filled" else hdrs))
                if via is f:
                    assert f.metrics()["cache_misses"] == misses + 1, "not served from fills"
                    wait_committed(f, committed + COLD_RANGE // (16 * MiB))
                cpu[k] += cpu_secs(via.proc.pid) - c0  # the fills' commits included
                res[k].append(gbs)
    finally:
        f.stop()
    return res, {k: v / (rounds * COLD_RANGE / (1 << 30)) for k, v in cpu.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(TOP, "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reqs", type=int, default=4)
    args = ap.parse_args()
    os.environ["LOTA_BUILD"] = os.path.abspath(args.build)
    from lotad import Lotad
    from origin import Origin

    work = tempfile.mkdtemp(prefix="lota-bench-ssec-")
    exe = os.path.join(work, "getload")
    subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "getload.c"), "-lpthread"],
                   check=True)
    origin = Origin(os.path.join(work, "origin"))
    d = None
    try:
        origin.start()
        d = Lotad(os.path.join(work, "lotad"), origin.url, workers=1).start()
        s3 = origin.s3(endpoint=d.url)
        s3.create_bucket(Bucket=BUCKET)
        key = os.urandom(32)
        body = os.urandom(SIZE)
        s3.put_object(Bucket=BUCKET, Key="plain", Body=body)
        s3.put_object(Bucket=BUCKET, Key="sealed", Body=body, SSECustomerAlgorithm="AES256",
                      SSECustomerKey=key)
        hdrs = [f"{SSEC}algorithm: AES256", f"{SSEC}key: {base64.b64encode(key).decode()}",
                f"{SSEC}key-MD5: {base64.b64encode(hashlib.md5(key).digest()).decode()}"]
        urls = {"plain": origin.presign(BUCKET, "plain", client=s3, expires=3600),
                "sealed": origin.presign(BUCKET, "sealed", client=s3, expires=3600)}
        extra = {"plain": [], "sealed": hdrs}
        for k in ("plain", "sealed"):
            getload(exe, d, urls[k], 1, 1, extra[k])
        cpu = {"plain": [0.0, 0], "sealed": [0.0, 0]}
        wait_committed(d, 2 * SIZE // (16 * MiB))
        hits0 = d.metrics()["cache_hits"]
        res = {"plain": [], "sealed": []}
        for r in range(args.rounds):
            for k in (("plain", "sealed") if r % 2 == 0 else ("sealed", "plain")):
                c0 = cpu_secs(d.proc.pid)
                gbs, n = getload(exe, d, urls[k], 1, args.reqs, extra[k])
                cpu[k][0] += cpu_secs(d.proc.pid) - c0
                cpu[k][1] += n
                res[k].append(gbs)
        hits = d.metrics()["cache_hits"] - hits0
        assert hits == 2 * args.rounds * args.reqs, f"not all hits: {hits}"
        for k, v in res.items():
            print(f"warm hit 256 MiB, 1 conn, {k:6}: {statistics.median(v):.2f} GB/s "
                  f"({min(v):.2f}-{max(v):.2f}), {args.rounds} rounds x {args.reqs} GETs; "
                  f"lotad CPU {cpu[k][0] / (cpu[k][1] / (1 << 30)):.3f} s/GiB")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        print(f"sealed/plain: {statistics.median(res['sealed']) / statistics.median(res['plain']):.2f}")
        cold, cold_cpu = cold_ranged(exe, origin, work, d, urls, hdrs, args.rounds)
        for k, v in cold.items():
            what = "plain object, filled" if k == "plain filled" else f"SSE-C, {k}"
            print(f"cold ranged read, first 64 MiB, 1 conn, {what:20}: "
                  f"{statistics.median(v):.2f} GB/s ({min(v):.2f}-{max(v):.2f}), "
                  f"{args.rounds} rounds; lotad CPU {cold_cpu[k]:.3f} s/GiB")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    finally:
        if d:
            d.stop()
        origin.stop()


if __name__ == "__main__":
    main()
