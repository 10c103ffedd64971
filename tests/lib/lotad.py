"""lotad as a test subject: writes a config file, starts the binary from the build
directory under test (LOTA_BUILD), waits for /healthz, reads /metrics, and stops exactly
the process it started.

The admin API: /healthz and /metrics are asked on the TCP admin address; /admin/... goes
to the unix socket `admin-socket`, which every Lotad gets in its own workdir (lotad's
default, /run/lota/admin.sock, is the machine's), as lotactl does by default. A test may
turn the socket off (admin_socket="") and set admin-token: /admin/... then goes over TCP
with that token."""

import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref

from origin import free_ports

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LOTA_BUILD", os.path.join(TOP, "build"))


SUN_PATH_MAX = 107  # bytes of a unix socket path (sizeof(sun_path) - 1)


class LotadError(RuntimeError):
    pass


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket (Host: localhost, as lotactl sends)."""

    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def socket_path(workdir, name="admin.sock"):
    """A unix socket path in workdir, or in a short directory of its own under /tmp when
    workdir is too deep for sun_path (removed when owner is collected)."""
    p = os.path.join(str(workdir), name)
    if len(p.encode()) <= SUN_PATH_MAX:
        return p, None
    d = tempfile.mkdtemp(prefix="lota-", dir="/tmp")
    return os.path.join(d, name), d


def http_call(conn, method, path, body=None, headers=None):
    """(status, {lower-case header: value}, body bytes) of one request on conn."""
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


class Lotad:
    def __init__(self, workdir, origin_url, listen_host="127.0.0.1", netns=None, config=None,
                 **cfg):
        """cfg: config keys with '_' for '-'; config: a dict of keys as lotad spells them
        (for names Python cannot take as keywords, such as `self`)."""
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        port, admin = free_ports(2)
        sock, sock_dir = socket_path(self.workdir)
        if sock_dir:
            weakref.finalize(self, shutil.rmtree, sock_dir, True)
        self.cfg = {
            "listen": f"{listen_host}:{port}",
            "admin": f"127.0.0.1:{admin}",
            "admin-socket": sock,
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

    @property
    def admin_socket(self):
        return self.cfg.get("admin-socket", "")

    def via_socket(self, path):
        """True when path is asked on the unix socket: /admin/..., if there is one."""
        return path.startswith("/admin/") and bool(self.admin_socket)

    def admin_token(self):
        """The token in the admin-token file, or None."""
        p = self.cfg.get("admin-token")
        if not p:
            return None
        with open(p) as f:
            return f.read().strip()

    def admin_call(self, method, path, body=None, headers=None, via=None, token=None,
                   timeout=5):
        """One admin request: (status, {header: value}, body bytes). via: "unix", "tcp",
        or None for the harness's choice (see the module's comment); token: sent as a
        bearer token (over TCP, the harness sends admin-token's for /admin/... unless
        token is given; "" sends none)."""
        via = via or ("unix" if self.via_socket(path) else "tcp")
        h = dict(headers or {})
        if via == "unix":
            conn = UnixHTTPConnection(self.admin_socket, timeout=timeout)
        else:
            host, port = self.cfg["admin"].rsplit(":", 1)
            conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
            if token is None and path.startswith("/admin/"):
                token = self.admin_token()
        if token:
            h["Authorization"] = "Bearer " + token
        return http_call(conn, method, path, body, h)

    def _checked(self, method, path, body, timeout):
        status, hdrs, data = self.admin_call(method, path, body, timeout=timeout)
        if status >= 400:
            raise urllib.error.HTTPError(self.admin_url + path, status,
                                         data.decode(errors="replace"), hdrs, io.BytesIO(data))
        return data.decode()

    def get(self, path, timeout=5):
        return self._checked("GET", path, None, timeout)

    def post(self, path, data=b"", timeout=5):
        return self._checked("POST", path, data, timeout)

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
