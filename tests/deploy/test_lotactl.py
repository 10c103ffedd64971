"""lotactl against a running lotad and the real radosgw origin: prestage of a prefix of
20 objects (all cached afterwards: the origin sends no body on the following GETs),
progress as plain lines and as a bar on a terminal, failures exit non-zero with a
summary; and the admin commands (status, stats, targets, peers, evict, log-level),
for people and with --json, over lotad's unix socket (its default path too, in a private
mount namespace) and over TCP with a bearer token (--token-file, $LOTA_ADMIN_TOKEN_FILE,
/etc/lota/admin-token), and the errors when the token or the socket is wrong."""

import json
import os
import pty
import subprocess
import time
import uuid

import pytest

from lotad import BUILD

MiB = 1024 * 1024
N_OBJECTS = 20


def lotactl(*args, env=None, timeout=300, stderr_tty=False):
    """(returncode, stdout, stderr) of build/lotactl; stderr_tty runs it with stderr on
    a pseudo-terminal (as an operator's shell has it)."""
    cmd = [os.path.join(BUILD, "lotactl"), *args]
    if not stderr_tty:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read().decode()
    p.wait(timeout)
    os.close(master)
    return p.returncode, out, err.decode(errors="replace")


def service_creds(tmp_path, origin):
    p = tmp_path / "service-credentials"
    p.write_text(f"[default]\naws_access_key_id = {origin.access_key}\n"
                 f"aws_secret_access_key = {origin.secret_key}\n")
    return str(p)


@pytest.fixture(scope="module")
def staged_bucket(origin):
    """A bucket with 20 objects of 4-5 MiB under pre/ and one outside it."""
    bucket = "prestage-" + uuid.uuid4().hex[:10]
    origin.create_bucket(bucket)
    s3 = origin.s3()
    bodies = {}
    for i in range(N_OBJECTS):
        key = f"pre/obj-{i:02d}" + (" with space&amp" if i == 7 else "")
        bodies[key] = os.urandom(4 * MiB + i * 50_000)
        s3.put_object(Bucket=bucket, Key=key, Body=bodies[key])
    s3.put_object(Bucket=bucket, Key="other/x", Body=os.urandom(5 * MiB))
    return bucket, bodies


def test_prestage_caches_every_object(origin, make_lotad, staged_bucket, tmp_path):
    bucket, bodies = staged_bucket
    d = make_lotad(service_credentials=service_creds(tmp_path, origin))
    env = origin.client_env(endpoint=f"http://127.0.0.1:{d.port}")

    rc, out, err = lotactl("prestage", f"s3://{bucket}/pre/", "--concurrency", "4", env=env)
    assert rc == 0, out + err
    lines = out.splitlines()
    assert sum(1 for ln in lines if " cached s3://" in ln) == N_OBJECTS, out
    assert any(ln.startswith(f"[{N_OBJECTS}/{N_OBJECTS}]") and "/s" in ln for ln in lines)
    assert f"{N_OBJECTS} of {N_OBJECTS} objects cached" in out
    assert "other/x" not in out
    m = d.metrics()
    assert m["cache_fills_committed"] == N_OBJECTS

    # Every object is served from the cache: the origin only confirms (304, no body).
    mark = origin.log_mark()
    s3 = origin.s3(endpoint=f"http://127.0.0.1:{d.port}")
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    gets = origin.log_requests(mark, "GET")
    assert len(gets) == N_OBJECTS
    assert all(r.status == 304 and r.bytes == 0 for r in gets), gets

    # Again on a terminal: a progress bar redrawn in place, JSON summary otherwise.
    rc, out, err = lotactl("prestage", f"s3://{bucket}/pre", env=env, stderr_tty=True)
    assert rc == 0, out + err
    assert "\r" in err and f"{N_OBJECTS}/{N_OBJECTS} objects" in err and "/s" in err
    rc, out, err = lotactl("--json", "prestage", f"s3://{bucket}/pre/", env=env)
    assert rc == 0, out + err
    j = json.loads(out)
    assert rc == 0 and j["objects"] == N_OBJECTS and j["failed"] == 0
    assert j["bytes"] == sum(len(b) for b in bodies.values())
    assert d.metrics()["cache_fills_committed"] == N_OBJECTS

    # evict one object, then all of them.
    admin = ["--admin", "unix:" + d.admin_socket, "--json"]
    rc, out, _ = lotactl(*admin, "evict", f"s3://{bucket}/pre/obj-07 with space&amp")
    assert rc == 0 and json.loads(out) == {"evicted": 1}
    rc, out, _ = lotactl(*admin, "evict", "--all")
    assert rc == 0 and json.loads(out) == {"evicted": N_OBJECTS - 1}
    assert d.metrics()["cache_entries"] == 0


def test_prestage_credentials_from_shared_file(origin, lotad, staged_bucket, tmp_path):
    bucket, _ = staged_bucket
    creds = tmp_path / "credentials"
    creds.write_text(f"[ops]\naws_access_key_id = {origin.access_key}\n"
                     f"aws_secret_access_key = {origin.secret_key}\n")
    env = origin.client_env(endpoint=f"http://127.0.0.1:{lotad.port}")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(k)
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_PROFILE="ops")
    rc, out, err = lotactl("--json", "prestage", f"s3://{bucket}/pre/obj-1", env=env)
    assert rc == 0, out + err
    assert json.loads(out)["objects"] == 10  # obj-10 .. obj-19

    env["AWS_PROFILE"] = "nobody"
    rc, out, err = lotactl("prestage", f"s3://{bucket}/pre/", env=env)
    assert rc == 1 and "no S3 credentials" in err and "nobody" in err


def test_prestage_failures_exit_nonzero_with_summary(origin, lotad, staged_bucket):
    bucket, _ = staged_bucket
    ep = f"http://127.0.0.1:{lotad.port}"
    bad = origin.client_env(endpoint=ep)
    bad["AWS_SECRET_ACCESS_KEY"] = "wrong"
    rc, out, err = lotactl("prestage", f"s3://{bucket}/pre/", env=bad)
    assert rc == 1 and "HTTP 403" in err and "SignatureDoesNotMatch" in err, err

    # May list the bucket, may not read its objects: every HEAD fails.
    access, secret = origin.create_user("lister-" + uuid.uuid4().hex[:6])
    origin.set_bucket_policy(bucket, {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Principal": {"AWS": [f"arn:aws:iam:::user/{access.split('-access')[0]}"]},
                       "Action": ["s3:ListBucket"],
                       "Resource": [f"arn:aws:s3:::{bucket}"]}]})
    try:
        env = origin.client_env(access=access, secret=secret, endpoint=ep)
        rc, out, err = lotactl("prestage", f"s3://{bucket}/pre/obj-0", env=env)
        assert rc == 1, out + err
        assert "0 of 10 objects cached" in out and "10 failed" in out
        assert out.count("FAILED s3://") == 10 and "HTTP 403" in out
    finally:
        origin.s3().delete_bucket_policy(Bucket=bucket)

    rc, _, err = lotactl("prestage", f"s3://{bucket}/nothing-here/",
                         env=origin.client_env(endpoint=ep))
    assert rc == 1 and "no objects under" in err
    rc, _, err = lotactl("prestage", "bucket/key")
    assert rc == 2 and "usage" in err


def test_admin_commands(origin, lotad):
    admin = ["--admin", "unix:" + lotad.admin_socket]
    rc, out, err = lotactl(*admin, "status")
    assert rc == 0, err
    assert "lotad:" in out and "bpf:       not attached" in out and "hit ratio:" in out
    rc, out, _ = lotactl(*admin, "status", "--json")
    assert rc == 0 and json.loads(out)["origin"] == origin.url

    rc, out, _ = lotactl(*admin, "--json", "stats")
    stats = json.loads(out)
    assert rc == 0 and "requests_total" in stats
    rc, out, _ = lotactl(*admin, "stats")
    assert rc == 0 and any(ln.startswith("requests_total ") for ln in out.splitlines())

    rc, out, _ = lotactl(*admin, "log-level", "debug")
    assert rc == 0 and "log_level debug" in out
    rc, out, _ = lotactl(*admin, "--json", "log-level")
    assert rc == 0 and json.loads(out) == {"log_level": "debug"}
    rc, _, err = lotactl(*admin, "log-level", "loud")
    assert rc == 1 and "unknown level" in err

    rc, out, _ = lotactl(*admin, "--json", "targets", "list")
    assert rc == 0 and isinstance(json.loads(out), dict)
    rc, _, err = lotactl(*admin, "targets", "add", "198.18.10.3:80")
    assert rc == 1 and "not active" in err  # bpf = off

    rc, out, err = lotactl(*admin, "peers")
    if rc == 1:
        assert "not part of a cluster" in err
    else:
        assert rc == 0

    rc, out, _ = lotactl(*admin, "--json", "evict", "somebucket/some/key")
    assert rc == 0 and json.loads(out) == {"evicted": 0}
    rc, _, err = lotactl(*admin, "evict", "no-key-here")
    assert rc == 2 and "BUCKET/KEY" in err

    rc, _, err = lotactl("--admin", "127.0.0.1:1", "status")
    assert rc == 1 and err == ("lotactl: 127.0.0.1:1: connect: Connection refused "
                               "(is lotad running? see --admin)\n"), err
    rc, _, err = lotactl("--admin", "unix:/nonexistent/lota/admin.sock", "status")
    assert rc == 1 and err == ("lotactl: /nonexistent/lota/admin.sock: connect: No such file "
                               "or directory (is lotad running? see --admin)\n"), err
    rc, _, err = lotactl("--admin", "unix:", "status")
    assert rc == 1 and "not a socket path" in err
    rc, _, err = lotactl("frobnicate")
    assert rc == 2 and "unknown command" in err


# -- the admin API's protection, through lotactl ------------------------------------------

TOKEN = "lotactl-token-" + "0f1e2d3c4b5a" * 3


def token_file(tmp_path, name, token):
    p = tmp_path / name
    p.write_text(token + "\n")
    os.chmod(p, 0o600)
    return str(p)


def no_token_env():
    env = dict(os.environ)
    env.pop("LOTA_ADMIN_TOKEN_FILE", None)
    return env


def test_admin_over_tcp_with_token(make_lotad, tmp_path):
    good = token_file(tmp_path, "admin-token", TOKEN)
    d = make_lotad(admin_token=good)
    tcp = ["--admin", d.cfg["admin"]]
    env = no_token_env()

    # No token: refused, nothing changed, and both sides say what to do.
    rc, out, err = lotactl(*tcp, "log-level", "debug", env=env)
    assert rc == 1 and out == "", out
    assert "lotactl: log-level: send Authorization: Bearer" in err, err
    assert "no token was sent: use --token-file FILE" in err, err
    rc, _, err = lotactl(*tcp, "--token-file", token_file(tmp_path, "wrong", "x" * 32),
                         "log-level", "debug", env=env)
    assert rc == 1 and "wrong bearer token" in err and "was refused" in err, err
    assert json.loads(d.get("/admin/log-level")) == {"log_level": "info"}
    assert d.metrics()["admin_refused"] == 2

    # --token-file, then $LOTA_ADMIN_TOKEN_FILE.
    rc, out, err = lotactl(*tcp, "--token-file", good, "log-level", "debug", env=env)
    assert rc == 0 and "log_level debug" in out, err
    by_env = dict(env, LOTA_ADMIN_TOKEN_FILE=good)
    rc, out, err = lotactl(*tcp, "--json", "status", env=by_env)
    assert rc == 0 and json.loads(out)["log_level"] == "debug", err
    rc, out, err = lotactl(*tcp, "--json", "evict", "b/k", env=by_env)
    assert rc == 0 and json.loads(out) == {"evicted": 0}, err

    # A named token file that cannot be read or used is an error before any request.
    for args, extra, msg in (
            (["--token-file", str(tmp_path / "nope")], {}, "--token-file %s: No such file"
             % (tmp_path / "nope")),
            ([], {"LOTA_ADMIN_TOKEN_FILE": str(tmp_path / "nope")},
             "$LOTA_ADMIN_TOKEN_FILE %s: No such file" % (tmp_path / "nope")),
            (["--token-file", token_file(tmp_path, "short", "short")], {},
             "5 bytes, at least 16 needed")):
        rc, _, err = lotactl(*tcp, *args, "status", env=dict(env, **extra))
        assert rc == 1 and msg in err, (args, err)
    assert d.metrics()["admin_refused"] == 2

    # Rotation: lotactl reads the file on every call, lotad within a second or two.
    new = "rotated-" + uuid.uuid4().hex
    with open(good + ".tmp", "w") as f:
        f.write(new)
    os.replace(good + ".tmp", good)
    for _ in range(50):
        rc, _, err = lotactl(*tcp, "--token-file", good, "status", env=env)
        if rc == 0:
            break
        time.sleep(0.1)
    assert rc == 0, err

    # /metrics and /healthz stay open; the socket needs no token.
    assert d.get("/healthz").strip() == "ok"
    rc, out, err = lotactl("--admin", "unix:" + d.admin_socket, "log-level", env=env)
    assert rc == 0 and "log_level debug" in out, err


# Runs in a private mount namespace: /run is a fresh tmpfs with lotad's socket bound at
# /run/lota/admin.sock, /etc an overlay where /etc/lota/admin-token can be written.
DEFAULTS = r'''
set -eu
mount -t tmpfs tmpfs /run
mkdir -p /run/lota "$W/etc.u" "$W/etc.w"
touch /run/lota/admin.sock
mount --bind "$SOCK" /run/lota/admin.sock
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$W/etc.u,workdir=$W/etc.w" /etc
rc=0; "$CTL" --json log-level >"$W/unix.out" 2>&1 || rc=$?; echo $rc >"$W/unix.rc"
rc=0; "$CTL" --admin "$ADMIN" status >"$W/none.out" 2>&1 || rc=$?; echo $rc >"$W/none.rc"
mkdir -p /etc/lota
printf '%s\n' "$TOKEN" >/etc/lota/admin-token
rc=0; "$CTL" --admin "$ADMIN" --json log-level >"$W/etc.out" 2>&1 || rc=$?; echo $rc >"$W/etc.rc"
umount /run/lota/admin.sock && rm /run/lota/admin.sock
rc=0; "$CTL" status >"$W/gone.out" 2>&1 || rc=$?; echo $rc >"$W/gone.rc"
'''


def test_default_socket_and_token_file(make_lotad, tmp_path):
    good = token_file(tmp_path, "admin-token", TOKEN)
    d = make_lotad(admin_token=good)
    w = tmp_path / "ns"
    w.mkdir()
    env = dict(no_token_env(), W=str(w), SOCK=d.admin_socket, ADMIN=d.cfg["admin"],
               TOKEN=TOKEN, CTL=os.path.join(BUILD, "lotactl"))
    subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", DEFAULTS],
                   env=env, check=True, timeout=60, stdin=subprocess.DEVNULL)

    def res(name):
        return int((w / (name + ".rc")).read_text()), (w / (name + ".out")).read_text()

    rc, out = res("unix")  # no --admin: the default socket
    assert rc == 0 and json.loads(out) == {"log_level": "info"}, out
    rc, out = res("none")  # TCP, no token anywhere
    assert rc == 1 and "no token was sent" in out, out
    rc, out = res("etc")  # TCP, /etc/lota/admin-token
    assert rc == 0 and json.loads(out) == {"log_level": "info"}, out
    rc, out = res("gone")
    assert rc == 1 and out == ("lotactl: /run/lota/admin.sock: connect: No such file or "
                               "directory (is lotad running? see --admin)\n"), out
    assert d.metrics()["admin_refused"] == 1
