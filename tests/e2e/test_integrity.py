"""Never serve a corrupt byte from the disk (issue 13), through a real lotad in front of a
real radosgw, byte for byte: the scrubber finds a flipped byte in a chunk nobody reads,
the store notices its directory going, refusing writes and coming back (no restart), and
a chunk file truncated or with a flipped byte reaches no client (whole, ranged, after a
restart): the client gets the origin's bytes, the chunk is fetched again, the counter
moves and the log says what happened.

Damage is done to the files under cache-dir/objects, found by their headers (cache/
entry.c: magic, format, header length, chunk length, ..., chunk index). What the origin
sent is read from its request log: a hit is a 304 with no body."""

import json
import os
import shutil
import struct
import subprocess
import time
import uuid

import pytest

from lotad import BUILD

HOST = "cwlota.com"
MiB = 1024 * 1024


# -- helpers ---------------------------------------------------------------------------

def ep(d):
    return f"http://{HOST}:{d.port}"


def put(origin, bucket, key, size):
    body = os.urandom(size)
    origin.s3().put_object(Bucket=bucket, Key=key, Body=body)
    return body


def get(d, origin, bucket, key, **kw):
    """(body, lower-cased headers) of a boto3 GET through d. A body shorter than its
    Content-Length raises (botocore checks it): a cut never passes as complete."""
    r = origin.s3(endpoint=ep(d)).get_object(Bucket=bucket, Key=key, **kw)
    return r["Body"].read(), r["ResponseMetadata"]["HTTPHeaders"]


def gets(origin, bucket, key, since):
    return [(r.status, r.bytes) for r in origin.log_requests(since, "GET", f"/{bucket}/{key}")]


def service_creds(tmp_path, origin):
    p = tmp_path / "service-credentials"
    p.write_text(f"[default]\naws_access_key_id = {origin.access_key}\n"
                 f"aws_secret_access_key = {origin.secret_key}\n")
    return str(p)


def wait_for(what, pred, timeout=10, d=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{d.log_tail()}" if d else ""))


def settled(d, timeout=60):
    """Every fill d started is committed or given up (commits run after the client has
    its bytes, on lotad's commit thread)."""
    def done():
        m = d.metrics()
        return m["cache_fills_committed"] + m["cache_fills_aborted"] >= m["cache_fills_started"]
    wait_for("fills to settle", done, timeout, d)


def status(d):
    return json.loads(d.get("/admin/status"))


def healthz(d):
    """(status code, body) of /healthz."""
    code, _, body = d.admin_call("GET", "/healthz")
    return code, body.decode()


def lotactl_status(d):
    p = subprocess.run([os.path.join(BUILD, "lotactl"), "--admin", "unix:" + d.admin_socket,
                        "status"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def chunk_files(d, bucket, key):
    """{chunk index: (path, header length, chunk length)} of bucket/key's committed
    chunk files, read from their headers."""
    out = {}
    top = os.path.join(d.cfg["cache-dir"], "objects")
    for root, _, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                h = fh.read(64)
                if len(h) < 64 or h[:8] != b"lotaobj\n":
                    continue
                hlen, clen = struct.unpack_from("<IQ", h, 12)
                lens = struct.unpack_from("<6H", h, 28)
                index, = struct.unpack_from("<I", h, 44)
                names = fh.read(lens[0] + lens[1])
            if names == (bucket + key).encode():
                out[index] = (p, hlen, clen)
    return out


def damaged_chunk(d, bucket, key):
    """The chunk a test damages: the second one if the object has several (so that a
    read mixes good chunks and the bad one), else the only one."""
    files = chunk_files(d, bucket, key)
    assert files, f"no chunk file of {bucket}/{key}"
    return files.get(1) or files[min(files)]


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))


@pytest.fixture(scope="module")
def bucket(origin):
    name = "integ-" + uuid.uuid4().hex[:12]
    origin.create_bucket(name)
    yield name
    s3 = origin.s3()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


# -- the scrubber ------------------------------------------------------------------------

def test_scrubber_finds_a_flipped_byte_in_an_unread_chunk(origin, make_lotad, bucket):
    """scrub-rate 8M and scrub-interval 0 over an 8 MiB cache: a pass a second. A byte
    flipped in a committed
    chunk nobody reads again is found within two passes, the chunk is dropped (file and
    entry), counted, logged by name, and the next read gets the origin's bytes."""
    rate, size = 8 * MiB, 8 * MiB
    key = "scrub/cold8"
    body = put(origin, bucket, key, size)
    d = make_lotad(scrub_rate=str(rate), scrub_interval="0")
    assert get(d, origin, bucket, key)[0] == body
    settled(d)
    wait_for("a scrub pass over the committed chunk",
             lambda: d.metrics()["cache_scrub_bytes"] >= size, 10, d)
    assert d.metrics()["cache_corrupt_chunks"] == 0
    path, hlen, clen = damaged_chunk(d, bucket, key)
    flip(path, hlen + clen // 2)

    t0 = time.monotonic()
    wait_for("the scrubber to find the flipped byte",
             lambda: d.metrics()["cache_corrupt_chunks"] >= 1, 2 * size / rate + 4, d)
    found = time.monotonic() - t0
    assert found <= 2 * size / rate + 2, f"found after {found:.1f} s"
    assert not os.path.exists(path)
    assert "corrupt chunk" in d.log_text() and os.path.basename(path) in d.log_text()
    m = d.metrics()
    assert m["cache_entries"] == 0 and m["cache_scrub_passes"] >= 1
    assert m["cache_scrub_chunks"] >= 1 and m["cache_scrub_bytes"] >= size
    st = status(d)["cache"]
    assert st["corrupt_chunks"] == 1 and st["scrub"]["rate"] == rate
    assert st["scrub"]["passes"] >= 1 and st["entries"] == 0
    out = lotactl_status(d)
    assert "1 corrupt" in out and "scrubber:  8.0 MiB/s" in out

    mark = origin.log_mark()
    got, h = get(d, origin, bucket, key)
    assert got == body and h.get("x-lota-cache") is None
    assert gets(origin, bucket, key, mark) == [(200, size)]
    settled(d)
    got, h = get(d, origin, bucket, key)
    assert got == body and h["x-lota-cache"] == "hit"


def test_scrub_interval_rests_between_passes(origin, make_lotad, bucket):
    """scrub-interval 3600 (the default) over an 8 MiB cache at 8 MiB/s: one pass, then
    the scrubber rests (a small cache is not re-read over and over at scrub-rate); with
    0 the passes run back to back."""
    key = "scrub/rest8"
    body = put(origin, bucket, key, 8 * MiB)
    for interval, more in (("3600", False), ("0", True)):
        d = make_lotad(scrub_rate=str(8 * MiB), scrub_interval=interval)
        assert get(d, origin, bucket, key)[0] == body
        settled(d)
        wait_for("a first scrub pass", lambda: d.metrics()["cache_scrub_passes"] >= 1, 10, d)
        m1 = d.metrics()
        time.sleep(3)
        m2 = d.metrics()
        assert (m2["cache_scrub_passes"] > m1["cache_scrub_passes"]) == more, (interval, m1, m2)
        assert (m2["cache_scrub_bytes"] > m1["cache_scrub_bytes"]) == more, (interval, m1, m2)
        assert status(d)["cache"]["scrub"]["interval"] == int(interval)
        assert f"a pass every {interval} s at most" in lotactl_status(d)
        d.stop()


def test_scrub_rate_zero_is_off_and_bad_values_refused(origin, make_lotad, bucket):
    key = "scrub/off8"
    body = put(origin, bucket, key, 8 * MiB)
    d = make_lotad(scrub_rate="0")
    assert get(d, origin, bucket, key)[0] == body
    settled(d)
    time.sleep(1.5)
    m = d.metrics()
    assert m["cache_scrub_bytes"] == 0 and m["cache_scrub_passes"] == 0
    assert "scrubber:  off" in lotactl_status(d)
    assert "scrub-rate is 0" in d.log_text()
    for bad, why in (("fast", "scrub-rate: invalid value 'fast'"),
                     ("2T", "scrub-rate: '2T' is more than")):
        p = subprocess.run([os.path.join(BUILD, "lotad"), "--origin", origin.url,
                            "--scrub-rate", bad], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and why in p.stderr, p.stderr
    p = subprocess.run([os.path.join(BUILD, "lotad"), "--help"], capture_output=True,
                       text=True, timeout=10)
    assert "--scrub-rate" in p.stdout and "(default: 50M)" in p.stdout


# -- the store notices its directory ---------------------------------------------------

def test_cache_dir_removed_then_recreated(origin, make_lotad, bucket):
    """The cache directory is removed under a running lotad: reads are served from the
    origin, byte-exact; /healthz still answers 200 but says the cache is degraded;
    /admin/status, /metrics and lotactl say so and claim no entry; once the directory is
    back, caching resumes without a restart."""
    key = "dir/gone8"
    body = put(origin, bucket, key, 8 * MiB)
    d = make_lotad()
    pid = d.proc.pid
    cache_dir = d.cfg["cache-dir"]
    assert healthz(d) == (200, "ok\n")
    assert get(d, origin, bucket, key)[0] == body
    settled(d)
    assert get(d, origin, bucket, key)[1]["x-lota-cache"] == "hit"
    assert status(d)["cache"]["entries"] >= 1

    shutil.rmtree(cache_dir)
    got, _ = get(d, origin, bucket, key)  # before lotad noticed, and after: served
    assert got == body
    code, text = wait_for("/healthz to say degraded",
                          lambda: (lambda r: r if r[1] != "ok\n" else None)(healthz(d)), 5, d)
    assert code == 200
    assert text == f"ok (cache degraded: {cache_dir}: No such file or directory)\n"
    st = status(d)
    assert st["cache"]["degraded"] is True and st["cache"]["entries"] == 0
    assert st["cache"]["bytes_used"] == 0
    assert st["cache"]["degraded_reason"] == f"{cache_dir}: No such file or directory"
    assert st["health"] == text.strip()
    m = d.metrics()
    assert m["cache_degraded"] == 1 and m["cache_degradations"] == 1
    assert m["cache_entries"] == 0
    out = lotactl_status(d)
    assert "DEGRADED" in out and "No such file or directory" in out

    mark = origin.log_mark()
    for _ in range(2):
        got, h = get(d, origin, bucket, key)
        assert got == body and h.get("x-lota-cache") is None
    assert gets(origin, bucket, key, mark) == [(200, 8 * MiB)] * 2
    assert not os.path.exists(cache_dir)  # lotad does not make it back behind our back

    os.mkdir(cache_dir)
    wait_for("/healthz to say ok again", lambda: healthz(d) == (200, "ok\n"), 5, d)
    st = status(d)
    assert st["cache"]["degraded"] is False and st["cache"]["degraded_reason"] == ""
    assert st["health"] == "ok"
    got, _ = get(d, origin, bucket, key)
    assert got == body
    settled(d)
    mark = origin.log_mark()
    got, h = get(d, origin, bucket, key)
    assert got == body and h["x-lota-cache"] == "hit"
    assert gets(origin, bucket, key, mark) == [(304, 0)]
    assert status(d)["cache"]["entries"] >= 1
    m = d.metrics()
    assert m["cache_degraded"] == 0 and m["cache_dir_recoveries"] == 1
    assert d.proc.pid == pid and d.alive()
    log = d.log_text()
    assert log.count("degraded, nothing is cached") == 1
    assert log.count("usable again, caching resumes") == 1
    assert "cache: cache:" not in log


@pytest.fixture
def small_disk(tmp_path):
    """A filesystem of the test's own (tmpfs), unmounted afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "lota-integ", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_cache_dir_refuses_writes_then_takes_them(origin, make_lotad, bucket, small_disk):
    """The cache's filesystem turns read-only: the store degrades (nothing new is
    cached) but keeps what it holds, which is still served; read-write again: caching
    resumes, without a restart."""
    held = put(origin, bucket, "ro/held", 8 * MiB)
    new = put(origin, bucket, "ro/new", 8 * MiB)
    d = make_lotad(cache_dir=str(small_disk / "cache"))
    assert get(d, origin, bucket, "ro/held")[0] == held
    settled(d)
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        wait_for("/healthz to say degraded", lambda: healthz(d)[1] != "ok\n", 5, d)
        code, text = healthz(d)
        assert code == 200 and "cache degraded:" in text and "Read-only file system" in text
        st = status(d)["cache"]
        assert st["degraded"] is True and st["entries"] == 1  # its files are still there
        got, h = get(d, origin, bucket, "ro/held")
        assert got == held and h["x-lota-cache"] == "hit"
        for _ in range(2):
            got, h = get(d, origin, bucket, "ro/new")
            assert got == new and h.get("x-lota-cache") is None
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    wait_for("/healthz to say ok again", lambda: healthz(d) == (200, "ok\n"), 5, d)
    assert get(d, origin, bucket, "ro/new")[0] == new
    settled(d)
    got, h = get(d, origin, bucket, "ro/new")
    assert got == new and h["x-lota-cache"] == "hit"
    assert status(d)["cache"]["entries"] == 2


# -- damaged chunk files reach no client (the read path verifies before it sends) ------

OBJ = 40 * MiB + 3  # three 16 MiB chunks, the last short


def damage(path, hlen, clen, how):
    if how == "flip":
        flip(path, hlen + clen // 2)
    else:
        os.truncate(path, hlen + clen // 2)


@pytest.mark.parametrize("read", ["whole", "ranged", "restart"])
@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_damaged_chunk_reaches_no_client(origin, make_lotad, bucket, tmp_path, how, read):
    """A committed chunk not read since it was written (or since a restart) is damaged:
    the next read through lotad gets the origin's bytes, whole or ranged, never a cut or
    a wrong byte; the chunk is dropped, counted (or removed at open, for a truncated file
    and a restart), fetched again, and the read after that is a hit. scrub-rate 0: this is
    the read path's verification, not the scrubber's."""
    key = f"damage/{how}-{read}"
    body = put(origin, bucket, key, OBJ)
    d = make_lotad(scrub_rate="0", service_credentials=service_creds(tmp_path, origin))
    assert get(d, origin, bucket, key)[0] == body
    settled(d)
    path, hlen, clen = damaged_chunk(d, bucket, key)
    damage(path, hlen, clen, how)
    if read == "restart":
        d.stop()
        d.start()

    lo, hi = (0, OBJ - 1) if read != "ranged" else (10 * MiB, 30 * MiB)
    kw = {"Range": f"bytes={lo}-{hi}"} if read == "ranged" else {}
    got, _ = get(d, origin, bucket, key, **kw)
    assert len(got) == hi - lo + 1, "a cut"
    assert got == body[lo:hi + 1], "a wrong byte"
    log = d.log_text()
    if how == "truncate" and read == "restart":
        assert "removed" in log  # the recovery at open saw the short file
    else:
        wait_for("the corrupt chunk to be counted",
                 lambda: d.metrics()["cache_corrupt_chunks"] >= 1, 5, d)
        assert "corrupt chunk" in log and os.path.basename(path) in log
    assert "client closed mid-request" not in log

    settled(d)
    mark = origin.log_mark()
    got, h = get(d, origin, bucket, key)
    assert got == body and h["x-lota-cache"] == "hit"
    assert all(b == 0 for _, b in gets(origin, bucket, key, mark))


def test_truncated_after_a_verified_read(origin, make_lotad, bucket, tmp_path):
    """A chunk already verified (served once) is truncated: its in-memory bit says
    verified, but a short file is still seen (its length, at least) before a byte of it
    is sent: the client gets the origin's bytes, not a cut at the same offset, again and
    again."""
    key = "damage/truncate-verified"
    body = put(origin, bucket, key, OBJ)
    d = make_lotad(scrub_rate="0", service_credentials=service_creds(tmp_path, origin))
    assert get(d, origin, bucket, key)[0] == body
    settled(d)
    assert get(d, origin, bucket, key)[1]["x-lota-cache"] == "hit"
    path, hlen, clen = damaged_chunk(d, bucket, key)
    damage(path, hlen, clen, "truncate")
    for _ in range(2):
        got, _ = get(d, origin, bucket, key)
        assert len(got) == OBJ and got == body
    assert "client closed mid-request" not in d.log_text()
