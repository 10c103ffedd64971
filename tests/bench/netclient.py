#!/usr/bin/python3
"""The NET benchmark's clients (net.py), one per run, started inside a node's network
namespace like a pod on that node. Each reads objects with a real S3 client, checks every
body against the manifest's size and CRC-32 as it streams in, and prints one JSON line:
bytes, wall seconds, the process's CPU seconds and, for `model`, the times of its steps.
The clock starts once the client is built (imports and set-up are not in "secs": a
pod's client is up before its job reads). Exit status 1 (and "error" in the JSON) on any
failure or wrong byte.

    netclient.py boto3  ENDPOINT_URL MANIFEST THREADS [go]
                                        get_object of every key; with "go": once the client
                                        is built, print "ready" and read from stdin the
                                        CLOCK_MONOTONIC time of the first request
    netclient.py crt    HOST         MANIFEST              awscrt S3Client (port 80)
    netclient.py model  ENDPOINT_URL MANIFEST KEY          safetensors-style load
    netclient.py files  DIR          MANIFEST              check what aws s3 cp wrote

MANIFEST is JSON: {"bucket": B, "objects": {key: [size, crc32]}}; keys under a prefix are
chosen by net.py. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."""

import concurrent.futures
import json
import os
import resource
import sys
import threading
import time
import urllib.parse
import zlib

MiB = 1 << 20
REGION = "us-east-1"


class Wrong(Exception):
    pass


def cpu_secs():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def check(key, want, got_size, got_crc):
    size, crc = want
    if (got_size, got_crc) != (size, crc):
        raise Wrong(f"{key}: got {got_size} bytes crc {got_crc:08x}, want {size} crc {crc:08x}")


def boto3_client(endpoint, threads):
    import boto3
    from botocore.config import Config

    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                 read_timeout=120, max_pool_connections=max(threads, 10))
    return boto3.session.Session().client("s3", region_name=REGION, endpoint_url=endpoint,
                                          config=cfg)


def read_body(body, crc=0):
    n = 0
    for chunk in iter(lambda: body.read(MiB), b""):
        crc = zlib.crc32(chunk, crc)
        n += len(chunk)
    return n, crc


def run_boto3(endpoint, man, threads, clock, is_told=False):
    s3 = boto3_client(endpoint, threads)
    bucket = man["bucket"]
    if is_told:
        print("ready", flush=True)
        start_at = float(sys.stdin.readline())
        time.sleep(max(0.0, start_at - time.monotonic()))
    clock.start()

    def one(key):
        r = s3.get_object(Bucket=bucket, Key=key)
        n, crc = read_body(r["Body"])
        check(key, man["objects"][key], n, crc)
        return n

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return {"bytes": sum(ex.map(one, sorted(man["objects"])))}


def run_crt(host, man, clock):
    """awscrt's S3Client: parallel ranged parts (8 MiB), If-Match on all but the first;
    it connects to port 80 of the Host header's name and ignores a port in it."""
    from awscrt import auth, http, io, s3

    elg = io.EventLoopGroup(2)
    bootstrap = io.ClientBootstrap(elg, io.DefaultHostResolver(elg))
    creds = auth.AwsCredentialsProvider.new_static(os.environ["AWS_ACCESS_KEY_ID"],
                                                   os.environ["AWS_SECRET_ACCESS_KEY"])
    client = s3.S3Client(bootstrap=bootstrap, region=REGION, credential_provider=creds,
                         tls_mode=s3.S3RequestTlsMode.DISABLED, part_size=8 * MiB)
    bucket = man["bucket"]
    state, lock = {}, threading.Lock()

    def start(key):
        st = state[key] = {"off": 0, "crc": 0, "status": None, "error": None}

        def on_headers(status_code, headers, **kw):
            st["status"] = status_code

        def on_body(chunk, offset, **kw):
            with lock:
                if offset != st["off"]:  # delivered in order, or we would say so
                    st["error"] = f"{key}: body at {offset}, expected {st['off']}"
                st["crc"] = zlib.crc32(chunk, st["crc"])
                st["off"] += len(chunk)

        path = f"/{bucket}/" + urllib.parse.quote(key)
        req = http.HttpRequest("GET", path, http.HttpHeaders([("Host", host)]))
        return client.make_request(request=req, type=s3.S3RequestType.GET_OBJECT,
                                   on_headers=on_headers, on_body=on_body)

    clock.start()
    reqs = [start(k) for k in sorted(man["objects"])]
    for r in reqs:
        r.finished_future.result(timeout=300)
    total = 0
    for key, st in state.items():
        if st["error"]:
            raise Wrong(st["error"])
        check(key, man["objects"][key], st["off"], st["crc"])
        total += st["off"]
    return {"bytes": total}


def run_model(endpoint, man, key, clock):
    """A safetensors load: 8 bytes (the header's length), the JSON header, then every
    tensor byte in one sequential ranged read."""
    s3 = boto3_client(endpoint, 1)
    bucket = man["bucket"]
    t0 = clock.start()
    r = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-7")
    first = r["Body"].read()
    t_first = time.monotonic() - t0
    hlen = int.from_bytes(first, "little")
    r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=8-{8 + hlen - 1}")
    header = r["Body"].read()
    tensors = json.loads(header)
    t_header = time.monotonic() - t0
    r = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={8 + hlen}-")
    n, crc = read_body(r["Body"], zlib.crc32(header, zlib.crc32(first)))
    check(key, man["objects"][key], 8 + len(header) + n, crc)
    return {"bytes": 8 + len(header) + n, "first_byte": t_first, "header": t_header,
            "tensors": len(tensors) - ("__metadata__" in tensors)}


def run_files(d, man, clock):
    clock.start()
    total = 0
    for key, want in man["objects"].items():
        crc, n = 0, 0
        with open(os.path.join(d, key), "rb") as f:
            for chunk in iter(lambda: f.read(4 * MiB), b""):
                crc = zlib.crc32(chunk, crc)
                n += len(chunk)
        check(key, want, n, crc)
        total += n
    return {"bytes": total}


class Clock:
    def start(self):
        self.cpu0, self.t0 = cpu_secs(), time.monotonic()
        return self.t0


def main():
    mode, where, manifest = sys.argv[1:4]
    with open(manifest) as f:
        man = json.load(f)
    clock = Clock()
    try:
        if mode == "boto3":
            out = run_boto3(where, man, int(sys.argv[4]), clock, sys.argv[5:] == ["go"])
        elif mode == "crt":
            out = run_crt(where, man, clock)
        elif mode == "model":
            out = run_model(where, man, sys.argv[4], clock)
        elif mode == "files":
            out = run_files(where, man, clock)
        else:
            raise SystemExit(f"netclient: unknown mode {mode}")
    except Exception as e:  # reported as JSON: net.py stops and shows it
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        sys.exit(1)
    # t0: CLOCK_MONOTONIC is the machine's, so net.py can compare it with its own
    out.update(secs=time.monotonic() - clock.t0, cpu=cpu_secs() - clock.cpu0, t0=clock.t0)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
