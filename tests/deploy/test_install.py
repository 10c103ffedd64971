"""scripts/install.sh and scripts/uninstall.sh on this machine, in a throwaway root: a
private mount namespace in which /etc, /usr/local, /var/cache and /run are copy-on-write
overlays (upper layers on a tmpfs) and /sys/fs/bpf is a fresh bpffs, so the scripts write
the real paths and nothing reaches the host. In there: a dry run changes nothing, an
install, a second install that changes nothing, systemd-analyze accepts the unit, the
installed lotad started from the unit's ExecStart line serves a GET through the real
origin, the installed lotactl reaches it on the default socket /run/lota/admin.sock (mode
0600), the admin address refuses /admin/... without the generated token and serves it
with it, then uninstall keeps the cache and --purge removes it."""

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from lotad import BUILD, TOP
from origin import free_ports

MiB = 1024 * 1024

# Runs in the namespace; $W is the test's work dir (outside the overlays), $@ the install
# options. Each phase leaves its output in $W; lotad runs until $W/stop appears.
SCRIPT = r'''
set -u
ov=$W/ov
mkdir -p "$ov"
mount -t tmpfs tmpfs "$ov"
for d in etc usr/local var/cache run; do
	n=${d//\//_}
	mkdir -p "$ov/$n.u" "$ov/$n.w"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ov/$n.u,workdir=$ov/$n.w" "/$d"
done
mount -t bpf bpf /sys/fs/bpf
cd "$TOP"
scripts/install.sh --dry-run "$@" >"$W/dry.out" 2>&1; echo $? >"$W/dry.rc"
ls -A "$ov/etc.u" "$ov/usr_local.u" "$ov/var_cache.u" "$ov/run.u" >"$W/dry.changes" 2>&1
scripts/install.sh "$@" >"$W/run1.out" 2>&1; echo $? >"$W/run1.rc"
scripts/install.sh "$@" >"$W/run2.out" 2>&1; echo $? >"$W/run2.rc"
cp /etc/systemd/system/lotad.service /etc/lota/lotad.conf "$W/"
systemd-analyze verify /etc/systemd/system/lotad.service >"$W/verify.out" 2>&1
echo $? >"$W/verify.rc"
cmd=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/lotad.service)
echo "$cmd" >"$W/execstart"
$cmd >"$W/lotad.log" 2>&1 &
pid=$!
for i in $(seq 200); do [ -S /run/lota/admin.sock ] && break; sleep 0.1; done
stat -c %a /run/lota/admin.sock >"$W/sock.mode" 2>&1
cp /etc/lota/admin-token "$W/admin-token"
/usr/local/bin/lotactl --json status >"$W/status.json" 2>&1; echo $? >"$W/status.rc"
while [ ! -e "$W/stop" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done
kill $pid 2>/dev/null; wait $pid
scripts/uninstall.sh >"$W/uninstall.out" 2>&1; echo $? >"$W/uninstall.rc"
for p in /usr/local/bin/lotad /usr/local/bin/lotactl /etc/lota /run/lota \
	/etc/systemd/system/lotad.service /var/cache/lota; do
	[ -e "$p" ] && echo "$p"
done >"$W/left.txt"
scripts/uninstall.sh --purge >"$W/purge.out" 2>&1; echo $? >"$W/purge.rc"
[ -e /var/cache/lota ] && echo /var/cache/lota >"$W/left-purge.txt"
touch "$W/done"
'''


def read(w, name):
    with open(os.path.join(w, name)) as f:
        return f.read()


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def steps(out):
    """{step: status} of install.sh's 'install: step: status' lines."""
    return dict(re.findall(r"^install: (\w+):\s+(.*)$", out, re.M))


@pytest.fixture
def installed(origin, tmp_path):
    """Runs SCRIPT in a private mount namespace; yields (workdir, listen, admin)."""
    w = str(tmp_path)
    # A private copy: the build directory may be relinked while the test runs.
    prebuilt = tmp_path / "prebuilt"
    prebuilt.mkdir()
    for b in ("lotad", "lotactl"):
        shutil.copy2(os.path.join(BUILD, b), prebuilt / b)
    port, admin = free_ports(2)
    opts = ["--origin", origin.url, "--prebuilt", str(prebuilt), "--no-start", "--bpf", "off",
            "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
            "--admin-token", "/etc/lota/admin-token", "--capacity", "1G"]
    env = dict(os.environ, W=w, TOP=TOP)
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c",
                          SCRIPT, "ns", *opts], env=env, stdin=subprocess.DEVNULL)
    try:
        yield w, port, admin
    finally:
        open(os.path.join(w, "stop"), "w").close()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_install_twice_serve_uninstall(origin, installed):
    w, port, admin = installed
    wait_for(lambda: os.path.exists(os.path.join(w, "execstart")), 120, "the installs")

    # Dry run: every step shown, nothing written.
    dry = read(w, "dry.out")
    assert read(w, "dry.rc").strip() == "0", dry
    assert "dry run" in dry and "would run: install" in dry
    assert set(steps(dry)) >= {"packages", "build", "lotad", "lotactl", "config", "token",
                               "cache", "unit", "bpffs", "service"}
    assert re.sub(r"\S+:\n", "", read(w, "dry.changes")).strip() == ""

    run1, run2 = read(w, "run1.out"), read(w, "run2.out")
    assert read(w, "run1.rc").strip() == "0", run1
    s1 = steps(run1)
    assert s1["lotad"].startswith("installed /usr/local/bin/lotad")
    assert s1["config"].startswith("written /etc/lota/lotad.conf")
    assert s1["cache"].startswith("created /var/cache/lota")
    assert s1["token"].startswith("created /etc/lota/admin-token")
    assert s1["unit"].startswith("installed /etc/systemd/system/lotad.service")

    # The second run changes nothing, and says so for every step.
    assert read(w, "run2.rc").strip() == "0", run2
    s2 = steps(run2)
    assert set(s2) == set(s1)
    assert all(v.startswith(("unchanged", "skipped")) for v in s2.values()), run2

    unit = read(w, "lotad.service")
    assert "ExecStart=/usr/local/bin/lotad --config /etc/lota/lotad.conf" in unit
    assert "ReadWritePaths=/var/cache/lota /sys/fs/bpf" in unit
    assert "CAP_BPF" in unit and "Restart=on-failure" in unit
    assert "RuntimeDirectory=lota\n" in unit
    assert read(w, "verify.rc").strip() == "0", read(w, "verify.out")
    conf = read(w, "lotad.conf")
    assert f"origin = {origin.url}" in conf and "capacity = 1G" in conf
    assert "admin-socket = /run/lota/admin.sock\n" in conf
    assert "admin-token = /etc/lota/admin-token\n" in conf

    # lotad from the unit's ExecStart serves a GET through the origin.
    def healthy():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1) as r:
                return r.read().strip() == b"ok"
        except OSError:
            return False

    wait_for(healthy, 20, "the installed lotad")
    bucket = "inst-" + uuid.uuid4().hex[:10]
    origin.create_bucket(bucket)
    body = os.urandom(5 * MiB)
    origin.s3().put_object(Bucket=bucket, Key="k", Body=body)
    s3 = origin.s3(endpoint=f"http://127.0.0.1:{port}")
    mark = origin.log_mark()
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == body
    assert [(r.status, r.bytes) for r in origin.log_requests(mark, "GET")] == [(200, len(body))]

    # The admin API: lotactl on the default socket; the admin address wants the token.
    wait_for(lambda: os.path.exists(os.path.join(w, "status.rc")), 20, "lotactl status")
    assert read(w, "status.rc").strip() == "0", read(w, "status.json")
    assert '"dir":"/var/cache/lota"' in read(w, "status.json")
    assert read(w, "sock.mode").strip() == "600"
    token = read(w, "admin-token").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    status_url = f"http://127.0.0.1:{admin}/admin/status"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(status_url, timeout=5)
    assert e.value.code == 401
    req = urllib.request.Request(status_url, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert b'"dir":"/var/cache/lota"' in r.read()

    open(os.path.join(w, "stop"), "w").close()
    wait_for(lambda: os.path.exists(os.path.join(w, "done")), 60, "the uninstall")
    assert read(w, "uninstall.rc").strip() == "0", read(w, "uninstall.out")
    assert read(w, "left.txt").split() == ["/var/cache/lota"], read(w, "uninstall.out")
    assert "kept /var/cache/lota" in read(w, "uninstall.out")
    assert read(w, "purge.rc").strip() == "0", read(w, "purge.out")
    assert not os.path.exists(os.path.join(w, "left-purge.txt")), read(w, "purge.out")


def test_install_refuses_bad_options(tmp_path):
    sh = os.path.join(TOP, "scripts", "install.sh")
    for args, msg in ((["--bpf", "maybe"], "--bpf must be"),
                      (["--cache-dir", "rel/dir"], "must be absolute"),
                      (["--frob"], "unknown option"),
                      (["--root", str(tmp_path), "--prebuilt", BUILD, "--no-deps"],
                       "--origin URL is required")):
        p = subprocess.run([sh, *args], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)
