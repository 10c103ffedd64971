"""A bounded TCP relay for tests: listens on one address (optionally inside a network
namespace the test made) and forwards every connection to a target in the test process's
own namespace. It can pace the target's answers (a slow network in front of a real
origin), record the HTTP/1.1 exchanges it carries (request head; response status, headers,
body length and SHA-256; start and end times) and cut connections (a dead network, or a
reset in the middle of one response). It never makes up a byte of HTTP itself.

    with Relay(("127.0.0.1", 0), ("127.0.0.1", origin.port), rate=16 * MiB) as r:
        ... lotad --origin r.url ...
        fills = [x for x in r.exchanges() if x.method == "GET" and "range" in x.req]

Each connection is two threads (one per direction); connections, idle time and the time
stop() waits are bounded."""

import hashlib
import socket
import struct
import threading
import time
from collections import deque

BUF = 256 * 1024
MAX_CONNS = 256
HEAD_MAX = 256 * 1024


class Exchange:
    """One request and its response on a relayed connection."""

    def __init__(self, conn_id, method, target, req, t_start):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.req = req  # {lower-case name: value}
        self.t_start = t_start
        self.status = None
        self.resp = {}
        self.t_head = None
        self.t_end = None
        self.body_len = 0
        self.complete = False
        self._sha = hashlib.sha256()

    @property
    def path(self):
        return self.target.partition("?")[0]

    @property
    def sha256(self):
        return self._sha.hexdigest()

    @property
    def access_key(self):
        """The access key of a SigV4 Authorization header, or None."""
        auth = self.req.get("authorization", "")
        i = auth.find("Credential=")
        return auth[i + 11:].split("/", 1)[0] if i >= 0 else None

    def __repr__(self):
        return (f"<{self.method} {self.target} range={self.req.get('range')} "
                f"if-match={self.req.get('if-match')} -> {self.status} {self.body_len}B"
                f"{'' if self.complete else ' (incomplete)'}>")


def _parse_head(raw):
    """(first line parts, {lower-case name: value}) of an HTTP head without its CRLFCRLF."""
    lines = raw.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        k = k.strip().lower()
        hdrs[k] = (hdrs[k] + "," + v.strip()) if k in hdrs else v.strip()
    return lines[0].split(" ", 2), hdrs


class _Tap:
    """Follows the HTTP framing of one relayed connection in both directions. On anything
    it does not understand it stops recording that connection (the relay goes on)."""

    def __init__(self, relay, conn_id):
        self.relay = relay
        self.conn_id = conn_id
        self.broken = False
        self.req_buf = b""
        self.req_body_left = 0
        self.pending = deque()  # requests whose response has not started
        self.resp_buf = b""
        self.cur = None  # the exchange whose response is being read
        self.body_left = None  # bytes of a Content-Length body still to come
        self.chunk_state = None  # None, "size", "data", "crlf", "trailer"
        self.chunk_left = 0
        self.until_close = False

    # -- requests -------------------------------------------------------------------

    def feed_request(self, data):
        if self.broken:
            return
        data = bytes(data)
        while data and not self.broken:
            if self.req_body_left:
                n = min(self.req_body_left, len(data))
                self.req_body_left -= n
                data = data[n:]
                continue
            self.req_buf += data
            data = b""
            end = self.req_buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.req_buf) > HEAD_MAX:
                    self.broken = True
                return
            head, data = self.req_buf[:end], self.req_buf[end + 4:]
            self.req_buf = b""
            first, hdrs = _parse_head(head)
            if len(first) != 3 or "chunked" in hdrs.get("transfer-encoding", "").lower():
                self.broken = True
                return
            x = Exchange(self.conn_id, first[0], first[1], hdrs, time.monotonic())
            self.req_body_left = int(hdrs.get("content-length", "0") or 0)
            if "100-continue" in hdrs.get("expect", "").lower():
                self.broken = True  # the body waits for an interim answer: not followed
            self.pending.append(x)
            self.relay._record(x)

    # -- responses ------------------------------------------------------------------

    def feed_response(self, data):
        if self.broken:
            return
        data = bytes(data)
        while data and not self.broken:
            if self.cur is None:
                data = self._response_head(data)
            elif self.chunk_state:
                data = self._chunked(data)
            else:
                data = self._body(data)

    def _response_head(self, data):
        self.resp_buf += data
        end = self.resp_buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.resp_buf) > HEAD_MAX:
                self.broken = True
            return b""
        head, rest = self.resp_buf[:end], self.resp_buf[end + 4:]
        self.resp_buf = b""
        first, hdrs = _parse_head(head)
        if not self.pending or len(first) < 2 or not first[1].isdigit():
            self.broken = True
            return b""
        status = int(first[1])
        if 100 <= status < 200:
            return rest
        x = self.pending.popleft()
        x.status, x.resp, x.t_head = status, hdrs, time.monotonic()
        self.cur = x
        te = hdrs.get("transfer-encoding", "").lower()
        if x.method == "HEAD" or status in (204, 304):
            self.body_left = 0
        elif "chunked" in te:
            self.chunk_state = "size"
            self.body_left = None
        elif "content-length" in hdrs:
            self.body_left = int(hdrs["content-length"])
        else:
            self.until_close = True
            self.body_left = None
        if self.body_left == 0:
            self._finish()
        return rest

    def _body(self, data):
        if self.until_close:
            self.cur._sha.update(data)
            self.cur.body_len += len(data)
            return b""
        n = min(self.body_left, len(data))
        self.cur._sha.update(data[:n])
        self.cur.body_len += n
        self.body_left -= n
        if self.body_left == 0:
            self._finish()
        return data[n:]

    def _chunked(self, data):
        x = self.cur
        if self.chunk_state == "data":
            n = min(self.chunk_left, len(data))
            x._sha.update(data[:n])
            x.body_len += n
            self.chunk_left -= n
            if self.chunk_left == 0:
                self.chunk_state = "crlf"
            return data[n:]
        self.resp_buf += data
        i = self.resp_buf.find(b"\r\n")
        if i < 0:
            return b""
        line, rest = self.resp_buf[:i], self.resp_buf[i + 2:]
        self.resp_buf = b""
        if self.chunk_state == "crlf":
            self.chunk_state = "size" if line == b"" else None
            self.broken = self.chunk_state is None
        elif self.chunk_state == "size":
            try:
                self.chunk_left = int(line.split(b";")[0], 16)
            except ValueError:
                self.broken = True
                return b""
            self.chunk_state = "data" if self.chunk_left else "trailer"
        elif line == b"":  # the empty line after the trailer ends the body
            self._finish()
        return rest

    def _finish(self):
        self.cur.complete = True
        self.cur.t_end = time.monotonic()
        self.cur = None
        self.chunk_state = None
        self.body_left = None

    def closed(self):
        now = time.monotonic()
        if self.cur is not None:
            if self.until_close:
                self.cur.complete = True
            self.cur.t_end = now
        for x in self.pending:
            x.t_end = now

    def current(self):
        """The exchange in progress on this connection (response pending or streaming)."""
        if self.cur is not None:
            return self.cur
        return self.pending[0] if self.pending else None


class _Conn:
    def __init__(self, cid, down, up, tap):
        self.id = cid
        self.down = down
        self.up = up
        self.tap = tap
        self.t_open = time.monotonic()
        self.done = 0  # directions finished

    def reset(self):
        """Both sockets closed with RST (SO_LINGER 0): the peers see a reset."""
        for s in (self.down, self.up):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Relay:
    """listen: (ip, port) (port 0: a free one); target: (host, port). netns: the listening
    socket is made inside that network namespace (the target is reached from the test's
    own). rate: bytes per second per connection for the target's answers (None: no pacing;
    the attribute may be changed while connections run).
    tap: record the HTTP exchanges."""

    def __init__(self, listen, target, netns=None, rate=None, tap=True, idle_timeout=120,
                 max_conns=MAX_CONNS):
        self.listen_addr = listen
        self.target = tuple(target)
        self.netns = netns
        self.rate = rate
        self.tap = tap
        self.idle_timeout = idle_timeout
        self.max_conns = max_conns
        self.sock = None
        self.addr = None
        self._lock = threading.Lock()
        self._conns = {}
        self._exchanges = []
        self._threads = []
        self._next_id = 0
        self.accepted = 0
        self.refused = 0
        self.max_open = 0
        self.bytes_up = 0  # client -> target
        self.bytes_down = 0  # target -> client
        self.stopping = False
        self.accepting = True
        self.holding = False
        self._released = threading.Event()

    # -- lifecycle --------------------------------------------------------------------

    def _listener(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(self.listen_addr)
        s.listen(128)
        return s

    def start(self):
        if self.netns:
            from cluster import run_in_ns
            self.sock = run_in_ns(self.netns, self._listener)
        else:
            self.sock = self._listener()
        self.addr = self.sock.getsockname()
        self.sock.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True, name="relay-accept")
        t.start()
        self._threads.append(t)
        return self

    @property
    def port(self):
        return self.addr[1]

    @property
    def url(self):
        return f"http://{self.addr[0]}:{self.addr[1]}"

    def stop(self, timeout=10):
        self.stopping = True
        self.release()
        if self.sock:
            self.sock.close()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            c.reset()
        end = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, end - time.monotonic()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what a test does to the network -----------------------------------------------

    def retarget(self, target):
        """New connections go to target (host, port); open ones stay where they are."""
        self.target = tuple(target)

    def cut(self, refuse=True):
        """Reset every open connection; with refuse, new ones are closed at once too (the
        target is gone)."""
        self.accepting = not refuse
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            c.reset()
        return len(conns)

    def reset_where(self, pred):
        """Reset the open connections whose exchange in progress satisfies pred(Exchange);
        returns how many."""
        with self._lock:
            conns = [c for c in self._conns.values()
                     if c.tap and c.tap.current() is not None and pred(c.tap.current())]
        for c in conns:
            c.reset()
        return len(conns)

    def hold(self):
        """From now on, a connection whose client goes away keeps its target side open and
        unread until release() (or idle_timeout): the target's request stays in progress,
        as it does for a client that vanished without a FIN (a dead host)."""
        self._released.clear()
        self.holding = True

    def release(self):
        """Held target sides are reset now; connections are no longer held."""
        self.holding = False
        self._released.set()

    def open_connections(self):
        with self._lock:
            return len(self._conns)

    def exchanges(self, since=0):
        """Exchanges recorded (in request order), from index since on."""
        with self._lock:
            return list(self._exchanges[since:])

    def mark(self):
        with self._lock:
            return len(self._exchanges)

    def _record(self, x):
        with self._lock:
            self._exchanges.append(x)

    # -- the relay itself -------------------------------------------------------------

    def _client_gone(self):
        """The client side closed or failed: with hold(), wait for release() first."""
        if self.holding:
            self._released.wait(self.idle_timeout)

    def _accept_loop(self):
        while not self.stopping:
            try:
                down, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                full = len(self._conns) >= self.max_conns
            if not self.accepting or full:
                self.refused += 1
                down.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                down.close()
                continue
            self.accepted += 1
            t = threading.Thread(target=self._open, args=(down,), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _open(self, down):
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rate:
            # A small fixed receive buffer: the pace reaches the target instead of
            # megabytes of its answer waiting in our socket.
            up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        up.settimeout(5)
        try:
            up.connect(self.target)
        except OSError:
            down.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            down.close()
            up.close()
            return
        for s in (up, down):
            s.settimeout(self.idle_timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            cid = self._next_id
            self._next_id += 1
            c = _Conn(cid, down, up, _Tap(self, cid) if self.tap else None)
            self._conns[cid] = c
            self.max_open = max(self.max_open, len(self._conns))
        t = threading.Thread(target=self._pump, args=(c, down, up, True), daemon=True)
        t.start()
        self._pump(c, up, down, False)
        t.join(self.idle_timeout + 5)
        if c.tap:
            c.tap.closed()
        with self._lock:
            self._conns.pop(cid, None)
        for s in (down, up):
            s.close()

    def _pump(self, c, src, dst, upward):
        buf = bytearray(BUF)
        mv = memoryview(buf)
        feed = None
        if c.tap:
            feed = c.tap.feed_request if upward else c.tap.feed_response
        due = time.monotonic()
        try:
            while True:
                rate = None if upward else self.rate  # a test may change it at any time
                limit = BUF if not rate else max(4096, min(BUF, int(rate) // 50))
                try:
                    n = src.recv_into(buf, limit)
                except OSError:
                    if upward:
                        self._client_gone()
                    raise
                if n == 0:
                    if upward:
                        self._client_gone()
                    break
                if feed:
                    feed(mv[:n])
                try:
                    dst.sendall(mv[:n])
                except OSError:
                    if not upward:
                        self._client_gone()
                    raise
                with self._lock:
                    if upward:
                        self.bytes_up += n
                    else:
                        self.bytes_down += n
                if rate:
                    now = time.monotonic()
                    due = max(due, now) + n / rate
                    if due > now:
                        time.sleep(due - now)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            c.reset()  # a reset or a timeout on one side resets both
