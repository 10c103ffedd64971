"""Case 12 of the benchmark suite (issue 17): the node is busy. A GPU node's CPUs run
data loaders; a cache there gets what the scheduler leaves it. Two busy processes at
normal priority (one per core of these VMs) spin while the warm-hit and miss cases run
again, for lotad, nginx, the bare sendfile server and the origin direct, interleaved.

The busy processes are children of the benchmark, each under `timeout` so that they stop
by themselves even if the benchmark dies, and are killed at the end of the case."""
import os
import signal
import subprocess
import sys

MiB = 1 << 20
BUCKET = "bench"
CASE_HIT = "12 busy node: warm hit 256 MiB, 1 conn"
CASE_MISS = "12 busy node: miss 256 MiB, 1 conn"
SPINNERS = 2
SPIN_LIMIT_S = 900  # the most a spinner lives, whatever happens to the benchmark


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def start_spinners(n):
    """n processes burning a core each at normal priority."""
    return [subprocess.Popen(["timeout", str(SPIN_LIMIT_S), "sh", "-c", "while :; do :; done"],
                             start_new_session=True) for _ in range(n)]


def stop_spinners(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


class BusyCase:
    def __init__(self, bench):
        self.b = bench
        self.res = bench.res
        self.rounds = bench.plan.rounds

    def _copies(self):
        s3 = self.b.origin.s3()
        keys = {}
        for who in ("lotad", "nginx"):
            for r in range(self.rounds):
                key = f"busy-miss-{who}-{r}"
                s3.copy_object(Bucket=BUCKET, Key=key,
                               CopySource={"Bucket": BUCKET, "Key": "hot256"})
                keys[(who, r)] = key
        return keys

    def run(self):
        log(f"case 12: busy node ({SPINNERS} spinning processes): warm hits and misses")
        keys = self._copies()
        for s in ("lotad", "nginx"):  # warm before the load starts
            self.b.load(self.b.ep[s], "hot256", 1, 1)
        self.b._settled(self.b.lotad)
        spinners = start_spinners(SPINNERS)
        try:
            for r in range(self.rounds):
                self._round(r, keys)
        finally:
            stop_spinners(spinners)
        self.res.notes.append(
            f"Case 12: {SPINNERS} `sh -c 'while :; do :; done'` processes at normal priority "
            "spin on the 2 vCPUs during the case (started after warming, killed at its end); "
            "the rows are case 1's and case 3's measurements under that load.")

    def _round(self, r, keys):
        hit = ["lotad", "nginx", "limit"]
        for s in hit[r % 3:] + hit[:r % 3]:
            d = self.b.load(self.b.ep[s], "hot256", 1, 1)
            self.res.add(CASE_HIT, "throughput", s, "GB/s", d["bytes"] / d["secs"] / 1e9)
        miss = [("lotad", keys[("lotad", r)]), ("origin", "hot256"), ("nginx", keys[("nginx", r)])]
        for s, key in miss[r % 3:] + miss[:r % 3]:
            d = self.b.load(self.b.ep[s], key, 1, 1)
            self.res.add(CASE_MISS, "throughput", s, "GB/s", d["bytes"] / d["secs"] / 1e9)
            if s == "lotad":
                self.b._settled(self.b.lotad)
