"""Byte-exact transfer peers for the sockmap test: a server (run where lotad would be,
in the steering cgroup) and a client (run in the pod). One connection per transfer:
  client -> server: "XFER <up> <upmode> <down> <downmode>\\n" then <up> bytes
  server -> client: "OK\\n" or "BAD <sha>\\n" once the upload is checked, then <down> bytes
Bytes are the first N of one deterministic pattern; modes are write, writev, sendfile.
  steer_peer.py server IP PORT        steer_peer.py client IP PORT UP UPMODE DOWN DOWNMODE
The client exits 0 and prints "ok <seconds>" only if both directions arrived byte-exact."""
import hashlib
import os
import select
import random
import socket
import sys
import tempfile
import time

MAX = 64 << 20
CHUNK = 64 << 10


def pattern():
    return random.Random(20240601).randbytes(MAX)


def send(sock, data, mode, path):
    if mode == "write":
        sock.sendall(data)
    elif mode == "writev":
        # several buffers per call, unaligned sizes, so each writev spans many iovecs
        view = memoryview(data)
        off = 0
        while off < len(view):
            bufs = []
            pos = off
            while pos < len(view) and len(bufs) < 64:
                n = min(CHUNK - 17 * len(bufs), len(view) - pos)
                bufs.append(view[pos:pos + n])
                pos += n
            off += sock.sendmsg(bufs)
    elif mode == "sendfile":
        with open(path, "rb") as f:
            sent = 0
            while sent < len(data):
                n = os.sendfile(sock.fileno(), f.fileno(), sent, len(data) - sent)
                if n <= 0:
                    raise OSError("sendfile returned %d" % n)
                sent += n
    else:
        raise ValueError(mode)


def recv_exact(sock, n):
    h = hashlib.sha256()
    got = 0
    buf = bytearray(1 << 20)
    while got < n:
        k = sock.recv_into(buf, min(len(buf), n - got))
        if k == 0:
            raise EOFError("short read: %d of %d" % (got, n))
        h.update(memoryview(buf)[:k])
        got += k
    return h.hexdigest()


def read_line(sock):
    line = b""
    while not line.endswith(b"\n"):
        try:
            c = sock.recv(1)
        except BlockingIOError:
            # Seen once on kernel 6.18: a blocking recv on a socket in a sockhash with
            # an sk_msg program (tcp_bpf_recvmsg) returned EAGAIN while its flow moved
            # from the redirect path to plain TCP. Wait for data and read again.
            select.select([sock], [], [], 5)
            continue
        if not c:
            raise EOFError("no line")
        line += c
    return line.decode().strip()


def pattern_file(data):
    f = tempfile.NamedTemporaryFile(prefix="steer-pattern-", delete=False)
    f.write(data)
    f.close()
    return f.name


def serve(ip, port):
    data = pattern()
    path = pattern_file(data)
    try:
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, port))
        ls.listen(64)
        print("ready", flush=True)
        while True:
            c, _ = ls.accept()
            try:
                _, up, upmode, down, downmode = read_line(c).split()
                up, down = int(up), int(down)
                sha = recv_exact(c, up)
                ok = sha == hashlib.sha256(data[:up]).hexdigest()
                c.sendall(b"OK\n" if ok else ("BAD %s\n" % sha).encode())
                send(c, data[:down], downmode, path)
                c.shutdown(socket.SHUT_WR)
                c.recv(1)
            except Exception as e:  # one bad transfer must not stop the server
                print("server error:", e, flush=True)
            finally:
                c.close()
    finally:
        os.unlink(path)


def client(ip, port, up, upmode, down, downmode):
    data = pattern()
    path = pattern_file(data)
    try:
        t0 = time.monotonic()
        s = socket.create_connection((ip, port), timeout=60)
        s.settimeout(None)  # blocking: os.sendfile must not see EAGAIN; the caller times out
        s.sendall(("XFER %d %s %d %s\n" % (up, upmode, down, downmode)).encode())
        send(s, data[:up], upmode, path)
        verdict = read_line(s)
        if verdict != "OK":
            print("upload corrupted:", verdict)
            return 1
        sha = recv_exact(s, down)
        if sha != hashlib.sha256(data[:down]).hexdigest():
            print("download corrupted")
            return 1
        s.close()
        print("ok %.4f" % (time.monotonic() - t0))
        return 0
    finally:
        os.unlink(path)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        a = sys.argv
        sys.exit(client(a[2], int(a[3]), int(a[4]), a[5], int(a[6]), a[7]))
