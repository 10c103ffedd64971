"""Case 13 of the benchmark suite (issue 12): one cold whole-object GET on one connection
(curl, a plain get_object) from an origin that paces each connection, as object stores do
(S3 serves a single GET near 100 MB/s; clients that want more open several). radosgw
here answers one connection as fast as many, so the pace comes from delay_relay in front
of it (no added delay, CONN_RATE per connection). Direct, the read gets one connection's
pace; through lotad (its origin the same relay), the client's own 200 fills the first
chunk and hands off to fill-parallelism chunk fills. Each round reads a fresh copy, so
lotad has never seen the object: the 200 is the first contact."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

MiB = 1 << 20
BUCKET = "bench"
CASE = "13 cold GET, origin paced per connection"
CONN_RATE = 100 * 1000 * 1000  # bytes/s per origin connection
ORDERS = (("lotad", "origin", "lotad warm"), ("origin", "lotad", "lotad warm"),
          ("lotad", "lotad warm", "origin"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Paced:
    def __init__(self, bench):
        self.b = bench
        self.res = bench.res
        self.rounds = bench.plan.rounds
        self.origin = bench.origin

    def _relay(self):
        from run import cc, free_ports_n

        exe = cc("delay_relay.c", os.path.join(self.b.bin, "delay_relay"))
        port = free_ports_n(1)[0]
        p = subprocess.Popen([exe, f"127.0.0.1:{port}", f"127.0.0.1:{self.origin.port}", "0",
                              "3600", str(CONN_RATE)], stdout=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "ready":
            p.kill()
            raise RuntimeError("delay_relay did not start")
        return p, port

    def run(self):
        from lotad import Lotad
        from run import Endpoint

        log(f"case 13: one cold GET of 256 MiB on one connection, the origin paced to "
            f"{CONN_RATE / 1e6:.0f} MB/s per connection")
        s3 = self.origin.s3()
        for r in range(self.rounds):
            s3.copy_object(Bucket=BUCKET, Key=f"paced-{r}",
                           CopySource={"Bucket": BUCKET, "Key": "hot256"})
        relay, port = self._relay()
        d = None
        try:
            d = Lotad(os.path.join(self.b.work, "lotad-paced"), f"http://127.0.0.1:{port}",
                      workers=2, bpf="off", log_level="warn",
                      service_credentials=self.b.creds).start()
            ep = {"origin": Endpoint("origin", port, lambda: [relay.pid]),
                  "lotad": Endpoint("lotad", d.port, lambda: [d.proc.pid])}
            for r in range(self.rounds):
                key = f"paced-{r}"
                for who in ORDERS[r % 3]:
                    mark = self.origin.log_mark()
                    got = self.b.load(ep["origin" if who == "origin" else "lotad"], key, 1, 1)
                    self.res.add(CASE, "throughput", who, "MB/s", got["bytes"] / got["secs"] / 1e6)
                    if who == "lotad":
                        self.b._settled(d)
                        sent = self.origin.body_bytes("GET", f"/{BUCKET}/{key}", since=mark)
                        self.res.add(CASE, "origin bytes per byte", who, "x", sent / got["bytes"])
            self.res.add(CASE, "200s handed off to chunk fills", "lotad", "count",
                         d.metrics()["cache_stream_handoffs"])
        finally:
            if d:
                d.stop()
            relay.terminate()
            relay.wait()
