"""lotad as a test subject: writes a config file, starts the binary from the build
directory under test (LOTA_BUILD), waits for /healthz, reads /metrics, and stops exactly
the process it started."""

import os
import signal
import subprocess
import time
import urllib.request

from origin import free_ports

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LOTA_BUILD", os.path.join(TOP, "build"))


class LotadError(RuntimeError):
    pass


class Lotad:
    def __init__(self, workdir, origin_url, listen_host="127.0.0.1", netns=None, config=None,
                 **cfg):
        """cfg: config keys with '_' for '-'; config: a dict of keys as lotad spells them
        (for names Python cannot take as keywords, such as `self`)."""
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        port, admin = free_ports(2)
        self.cfg = {
            "listen": f"{listen_host}:{port}",
            "admin": f"127.0.0.1:{admin}",
            "origin": origin_url,
            "cache-dir": os.path.join(self.workdir, "cache"),
            "workers": "2",
            "log-level": "info",
            "bpf": "off",
        }
        self.cfg.update({k.replace("_", "-"): str(v) for k, v in cfg.items()})
        self.cfg.update({k: str(v) for k, v in (config or {}).items()})
        self.netns = netns
        self.proc = None
        self.log_path = os.path.join(self.workdir, "lotad.log")
        self.conf_path = os.path.join(self.workdir, "lotad.conf")

    @property
    def port(self):
        return int(self.cfg["listen"].rsplit(":", 1)[1])

    @property
    def url(self):
        return "http://" + self.cfg["listen"]

    @property
    def admin_url(self):
        return "http://" + self.cfg["admin"]

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# written by the test suite\n")
            for k, v in self.cfg.items():
                f.write(f"{k} = {v}\n")

    def start(self, timeout=15, extra_args=()):
        self.write_config()
        cmd = [os.path.join(BUILD, "lotad"), "--config", self.conf_path, *extra_args]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        # Under SANITIZE=1: a daemon's exit does not free every connection, so leak
        # reports would be noise; memory errors and UB still end up in the log.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:quarantine_size_mb=16")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise LotadError(f"lotad exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.get("/healthz").strip() == "ok":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise LotadError(f"lotad not healthy after {timeout}s:\n{self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if not self.proc or self.proc.poll() is not None:
            self.check_sanitizers()
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        self.check_sanitizers()

    def check_sanitizers(self):
        """A sanitizer report in lotad's log fails the test that ran it."""
        text = self.log_text() if os.path.exists(self.log_path) else ""
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            if marker in text:
                i = text.index(marker)
                raise LotadError(f"sanitizer report in {self.log_path}:\n{text[i:i + 3000]}")

    @property
    def sanitized(self):
        return os.path.basename(BUILD.rstrip("/")).endswith("-san")

    def kill9(self):
        self.stop(signal.SIGKILL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def get(self, path, timeout=5):
        with urllib.request.urlopen(self.admin_url + path, timeout=timeout) as r:
            return r.read().decode()

    def post(self, path, data=b"", timeout=5):
        req = urllib.request.Request(self.admin_url + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read().decode()

    def metrics(self):
        """{name: value} of every lota_* sample (labels kept in the name)."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if line.startswith("lota_"):
                name, _, value = line.rpartition(" ")
                out[name[len("lota_"):]] = float(value)
        return out

    def status(self, key):
        """A line of /proc/PID/status in KiB, e.g. VmHWM (peak RSS) or VmRSS."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n=30):
        return "".join(self.log_text().splitlines(True)[-n:])
