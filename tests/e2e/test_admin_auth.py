"""The admin API's protection, against a real lotad in front of the real radosgw: on the
TCP admin address only /healthz and /metrics answer without a token; every /admin/...
call (evict, targets add/del, log-level, status, ...) is refused there, 403 without
admin-token and 401/403 with a missing or wrong bearer token, and changes nothing (the
cached object is still a hit: the origin answers 304 with no body; the BPF targets and the
log level are as before). The right token works; rotating the token file takes effect
without a restart; the unix socket (admin-socket) serves everything without a token,
with mode 0600, a stale socket is replaced, a file that is not a socket is never removed.
Bad admin-socket and admin-token values name their key and exit 2."""

import json
import os
import re
import shutil
import stat
import subprocess
import time
import uuid

import pytest

from lotad import BUILD, Lotad, LotadError

MiB = 1024 * 1024
TOKEN = "t0ken-" + "a1b2c3d4e5f6" * 4
STATIC_TARGET = "198.18.77.1:80"
NEW_TARGET = "198.18.77.2:80"


# -- helpers ---------------------------------------------------------------------------

def write_token(path, token):
    """Replaces path atomically, as kubelet updates a Secret volume."""
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def tcp(d, method, path, token="", headers=None):
    """An admin call on the TCP address: (status, headers, parsed JSON or text)."""
    status, hdrs, body = d.admin_call(method, path, via="tcp", token=token, headers=headers)
    text = body.decode()
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text


def local(d, method, path):
    """An admin call on the unix socket, which must answer 200: the JSON it sent."""
    status, _, body = d.admin_call(method, path, via="unix")
    assert status == 200, (method, path, status, body)
    return json.loads(body)


def targets(d):
    return sorted(t["addr"] for t in local(d, "GET", "/admin/targets")["targets"])


def cached_object(origin, d):
    """A 5 MiB object read once through d (a miss that fills the cache)."""
    bucket = "adm-" + uuid.uuid4().hex[:10]
    origin.create_bucket(bucket)
    body = os.urandom(5 * MiB)
    origin.s3().put_object(Bucket=bucket, Key="obj", Body=body)
    assert read(origin, d, bucket) == body
    wait(lambda: d.metrics()["cache_entries"] == 1, "the fill to commit")
    return bucket, body


def read(origin, d, bucket):
    s3 = origin.s3(endpoint=d.url)
    return s3.get_object(Bucket=bucket, Key="obj")["Body"].read()


def assert_hit(origin, d, bucket, body):
    """A read through d is served from the cache: the origin only confirms (304, 0 B)."""
    mark = origin.log_mark()
    assert read(origin, d, bucket) == body
    got = [(r.status, r.bytes) for r in origin.log_requests(mark, "GET", f"/{bucket}/obj")]
    assert got == [(304, 0)], got


def wait(pred, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def cgroup2_mount():
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, path, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return path
    raise RuntimeError("no cgroup2 mount")


@pytest.fixture
def steering(tmp_path):
    """Config for BPF steering attached to an empty child cgroup (nothing is steered),
    with its own pin dir; both are removed afterwards."""
    assert os.geteuid() == 0, "BPF steering needs root"
    tag = "%s-%d" % (uuid.uuid4().hex[:6], os.getpid())
    cg = os.path.join(cgroup2_mount(), "lota-test-admin-" + tag)
    pins = "/sys/fs/bpf/lota-admin-" + tag
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    os.mkdir(cg)
    yield dict(bpf="on", cgroup=cg, bpf_pin_dir=pins, targets=STATIC_TARGET)
    shutil.rmtree(pins, ignore_errors=True)
    for _ in range(50):
        try:
            os.rmdir(cg)
            break
        except FileNotFoundError:
            break
        except OSError:
            time.sleep(0.1)


# Every protected call lotactl makes, and a path that does not exist.
PROTECTED = [
    ("POST", "/admin/evict?bucket={bucket}&key=obj"),
    ("POST", "/admin/evict?all=1"),
    ("POST", "/admin/targets?add=" + NEW_TARGET),
    ("POST", "/admin/targets?del=" + STATIC_TARGET),
    ("POST", "/admin/log-level?level=debug"),
    ("GET", "/admin/log-level"),
    ("GET", "/admin/status"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/targets"),
    ("GET", "/admin/no-such-thing"),
]


def refused_changes_nothing(origin, d, bucket, body):
    """Everything the calls could have changed is as before."""
    assert targets(d) == [STATIC_TARGET]
    assert local(d, "GET", "/admin/log-level") == {"log_level": "info"}
    assert d.metrics()["cache_entries"] == 1
    assert_hit(origin, d, bucket, body)


# -- TCP without admin-token ---------------------------------------------------------------

def test_tcp_refuses_admin_calls_without_admin_token(origin, steering, make_lotad):
    d = make_lotad(**steering)
    bucket, body = cached_object(origin, d)
    assert_hit(origin, d, bucket, body)
    assert targets(d) == [STATIC_TARGET]

    for method, path in PROTECTED:
        status, hdrs, j = tcp(d, method, path.format(bucket=bucket))
        assert status == 403, (method, path, status, j)
        assert isinstance(j, dict) and set(j) == {"error"}, j
        assert "unix socket" in j["error"] and "admin-token" in j["error"], j
        assert hdrs["content-type"] == "application/json"
    # a token is no use where none is configured
    status, _, _ = tcp(d, "POST", "/admin/evict?all=1", token=TOKEN)
    assert status == 403
    refused_changes_nothing(origin, d, bucket, body)

    # Counted, and logged without a line per call.
    assert d.metrics()["admin_refused"] == len(PROTECTED) + 1
    lines = [ln for ln in d.log_text().splitlines() if "admin: refused" in ln]
    assert 1 <= len(lines) <= 2, lines
    assert "no admin-token" in lines[0] and "/admin/" in lines[0]

    # What faces the network still answers without a token.
    assert d.get("/healthz").strip() == "ok"
    assert "lota_cache_entries 1" in d.get("/metrics")


# -- TCP with admin-token ------------------------------------------------------------------

def test_tcp_bearer_token(origin, steering, make_lotad, tmp_path):
    tok = tmp_path / "admin-token"
    write_token(tok, TOKEN)
    d = make_lotad(admin_token=str(tok), **steering)
    bucket, body = cached_object(origin, d)

    wrong = [
        ({}, 401),                                          # no header
        ({"Authorization": "Basic " + TOKEN}, 401),         # not a bearer credential
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer " + TOKEN[:-1]}, 403),   # a prefix
        ({"Authorization": "Bearer " + TOKEN + "x"}, 403),  # longer
        ({"Authorization": "Bearer " + TOKEN.upper()}, 403),
        ({"Authorization": "Bearer " + "x" * 5000}, 403),
    ]
    n = 0
    for hdrs, want in wrong:
        for method, path in PROTECTED:
            status, rh, j = tcp(d, method, path.format(bucket=bucket), headers=hdrs)
            assert status == want, (hdrs, method, path, status, j)
            assert set(j) == {"error"}, j
            if want == 401:
                assert rh["www-authenticate"].startswith("Bearer"), rh
            n += 1
    refused_changes_nothing(origin, d, bucket, body)
    assert d.metrics()["admin_refused"] == n

    # The right token, any case of "Bearer": lotactl's calls work over TCP.
    ok = {"Authorization": "bearer  " + TOKEN}
    assert tcp(d, "GET", "/admin/status", headers=ok)[2]["cache"]["entries"] == 1
    status, _, j = tcp(d, "POST", "/admin/log-level?level=debug", token=TOKEN)
    assert status == 200 and j == {"log_level": "debug"}
    assert local(d, "GET", "/admin/log-level") == {"log_level": "debug"}
    status, _, j = tcp(d, "POST", "/admin/targets?add=" + NEW_TARGET, token=TOKEN)
    assert status == 200 and NEW_TARGET in [t["addr"] for t in j["targets"]], j
    assert targets(d) == sorted([STATIC_TARGET, NEW_TARGET])
    status, _, j = tcp(d, "POST", f"/admin/evict?bucket={bucket}&key=obj", token=TOKEN)
    assert status == 200 and j == {"evicted": 1}
    mark = origin.log_mark()
    assert read(origin, d, bucket) == body  # evicted: the origin sends the body again
    assert [r.status for r in origin.log_requests(mark, "GET", f"/{bucket}/obj")] == [200]
    # two Authorization headers are refused even when one is right
    status, _, _ = d.admin_call("GET", "/admin/status", via="tcp", token=TOKEN,
                                headers={"authorization": "Bearer wrong-wrong-wrong-wrong"})
    assert status in (401, 403)


def test_token_rotation_without_restart(origin, make_lotad, tmp_path):
    tok = tmp_path / "admin-token"
    write_token(tok, TOKEN)
    d = make_lotad(admin_token=str(tok))
    pid = d.proc.pid
    assert tcp(d, "GET", "/admin/status", token=TOKEN)[0] == 200

    new = "rotated-" + uuid.uuid4().hex
    write_token(tok, new)  # a new file renamed over the old one (kubelet, editors)
    wait(lambda: tcp(d, "GET", "/admin/status", token=new)[0] == 200, "the new token")
    assert tcp(d, "GET", "/admin/status", token=TOKEN)[0] == 403

    newer = "rewritten-" + uuid.uuid4().hex
    with open(tok, "w") as f:  # rewritten in place
        f.write(newer)
    wait(lambda: tcp(d, "GET", "/admin/status", token=newer)[0] == 200, "the rewritten token")
    assert tcp(d, "GET", "/admin/status", token=new)[0] == 403

    # A file that cannot be a token (too short) is refused; the token in use stays.
    write_token(tok, "short")
    wait(lambda: "at least 16 needed" in d.log_text(), "the reload error")
    assert tcp(d, "GET", "/admin/status", token=newer)[0] == 200
    assert tcp(d, "GET", "/admin/status", token="short")[0] in (401, 403)
    assert d.proc.pid == pid and d.alive()


# -- the unix socket ---------------------------------------------------------------------

def test_unix_socket_serves_everything_without_token(origin, make_lotad, tmp_path):
    sock = os.path.join(str(tmp_path), "run", "lota", "admin.sock")  # directories made
    d = make_lotad(admin_socket=sock)
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    bucket, body = cached_object(origin, d)

    assert local(d, "GET", "/admin/status")["cache"]["entries"] == 1
    assert local(d, "POST", "/admin/log-level?level=warn") == {"log_level": "warn"}
    assert "requests_total" in local(d, "GET", "/admin/stats")
    assert local(d, "POST", f"/admin/evict?bucket={bucket}&key=obj") == {"evicted": 1}
    assert d.metrics()["cache_entries"] == 0
    assert d.admin_call("GET", "/healthz", via="unix")[2] == b"ok\n"
    assert d.metrics()["admin_refused"] == 0

    # A clean stop removes the socket; after kill -9 the stale one is replaced.
    d.stop()
    assert not os.path.exists(sock)
    d.start()
    d.kill9()
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    d.start()
    assert local(d, "GET", "/admin/log-level") == {"log_level": "info"}
    assert "removed a stale socket" in d.log_text()

    # A second lotad on the same path leaves the first one serving.
    other = Lotad(tmp_path / "other", origin.url, admin_socket=sock)
    with pytest.raises(LotadError, match="another process is serving it"):
        other.start()
    assert local(d, "GET", "/admin/log-level") == {"log_level": "info"}


def test_unix_socket_path_that_is_not_a_socket(origin, tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    d = Lotad(tmp_path / "d", origin.url, admin_socket=str(path))
    with pytest.raises(LotadError, match="exists and is not a socket"):
        d.start()
    assert path.read_text() == "precious"


def test_no_unix_socket_when_empty(origin, make_lotad, tmp_path):
    tok = tmp_path / "admin-token"
    write_token(tok, TOKEN)
    d = make_lotad(admin_socket="", admin_token=str(tok))
    assert not os.path.exists(os.path.join(d.workdir, "admin.sock"))
    assert "admin-socket" not in d.log_text()
    # the harness falls back to TCP with the token
    assert json.loads(d.get("/admin/log-level")) == {"log_level": "info"}


# -- configuration -----------------------------------------------------------------------

def lotad_exit(*args):
    p = subprocess.run([os.path.join(BUILD, "lotad"), "--origin", "http://127.0.0.1:1",
                        "--bpf", "off", "--cache-dir", "", *args],
                       capture_output=True, text=True, timeout=10)
    return p.returncode, p.stderr


def test_bad_admin_keys_exit_2(tmp_path):
    short = tmp_path / "short"
    short.write_text("0123456789\n")
    spaced = tmp_path / "spaced"
    spaced.write_text("0123456789 abcdefghij\n")
    for args, msg in (
            (["--admin-socket", "run/admin.sock"], "admin-socket: 'run/admin.sock' is not an "
                                                   "absolute path"),
            (["--admin-socket", "/" + "s" * 120], "admin-socket: '/sss"),
            (["--admin-token", str(tmp_path / "nope")], "admin-token %s: No such file"
             % (tmp_path / "nope")),
            (["--admin-token", str(short)], "admin-token %s: 10 bytes, at least 16" % short),
            (["--admin-token", str(spaced)], "is not printable ASCII")):
        rc, err = lotad_exit(*args)
        assert rc == 2 and msg in err, (args, rc, err)
    help_text = subprocess.run([os.path.join(BUILD, "lotad"), "--help"], capture_output=True,
                               text=True).stdout
    assert re.search(r"^  --admin-socket\s.*0600.*\(default: /run/lota/admin.sock\)$", help_text,
                     re.M), help_text
    assert re.search(r"^  --admin-token\s.*bearer token", help_text, re.M), help_text
