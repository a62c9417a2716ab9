"""The app's HTTP server: one loop owns the connections, a bounded pool of threads answers requests.

The standard library's ``ThreadingHTTPServer`` listens with a backlog of 5 and gives every
connection a thread that waits on it with no timeout: 200 concurrent requests lost 28-79 of
them (connection reset), and every idle connection pinned a thread. Here:

- the listen backlog is ``backlog`` (1024; the system caps it at net.core.somaxconn): with
  socketserver's 5, a burst of connections overflowed it and clients waited out SYN retries;
- one loop thread accepts connections and reads them without blocking until a request is
  complete (its head, and a body of announced length up to ``max_body``); only then does a
  worker get it, so a connection that sends nothing, or one byte now and then, holds no worker;
- a connection without a complete request ``read_timeout`` seconds after it opened (or after
  its last answer, kept alive) is closed; with ``max_connections`` open, the one idle longest
  is closed to make room, so a flood of idle connections cannot lock anyone out;
- ``workers`` threads answer requests, one request at a time; a kept-alive connection goes
  back to the loop between requests.
"""
from __future__ import annotations

import re
import resource
import selectors
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from queue import Empty, SimpleQueue
from typing import Any

MAX_HEAD = 64 * 1024 + 8 * 1024  # request line and headers (http.server refuses longer lines itself)
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*([0-9]{1,15})[ \t]*\r?(?:\n|$)", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
_DROPPED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class Connection:
    """One client connection: the bytes read so far, and file-like ``readline``/``read``/``write``
    for the request handler (reading more waits at most until ``deadline``)."""

    def __init__(self, sock: socket.socket, address: Any, timeout: float) -> None:
        self.sock = sock
        self.address = address
        self.timeout = timeout
        self.buffer = bytearray()
        self.deadline = time.monotonic() + timeout
        self.closed = False

    def request_ready(self, max_body: int) -> bool:
        """Whether the buffer holds a whole request (head, and the announced body when it is
        allowed in size), or enough for the handler to refuse it (a head too long, a body too big,
        ``Expect: 100-continue``, which waits for the handler's answer)."""
        end = _HEAD_END.search(self.buffer)
        if end is None:
            return len(self.buffer) > MAX_HEAD
        head = bytes(self.buffer[: end.start()])
        if _EXPECT_CONTINUE.search(head):
            return True
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            return True
        n = int(length.group(1))
        return n > max_body or len(self.buffer) - end.end() >= n

    def _fill(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        self.buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        while True:
            i = self.buffer.find(b"\n")
            if i >= 0 and (limit < 0 or i < limit):
                n = i + 1
                break
            if 0 <= limit <= len(self.buffer):
                n = limit
                break
            if not self._fill():
                n = len(self.buffer)
                break
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buffer) < n) and self._fill():
            pass
        n = len(self.buffer) if n < 0 else min(n, len(self.buffer))
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    def write(self, data: bytes) -> int:
        self.sock.sendall(data)  # at most ``timeout`` seconds in all (a client that does not read)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class PooledRequestHandler(BaseHTTPRequestHandler):
    """A request handler for :class:`PooledHTTPServer`: answers one request; the server keeps
    the connection (kept alive) or closes it."""

    request: Connection

    def setup(self) -> None:
        self.connection = self.request.sock
        self.rfile = self.request  # type: ignore[assignment]
        self.wfile = self.request  # type: ignore[assignment]

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        pass


def default_max_connections(workers: int) -> int:
    """1024, or fewer when the process may open fewer files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(workers + 8, min(1024, soft - 128))


class PooledHTTPServer(HTTPServer):
    """``HTTPServer`` with an accept/read loop and a bounded pool of workers (module docstring)."""

    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type[PooledRequestHandler], *, workers: int = 32,
                 read_timeout: float = 30.0, max_body: int = 64 * 1024, max_connections: int | None = None,
                 backlog: int = 1024) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.request_queue_size = backlog
        self.read_timeout = read_timeout
        self.max_body = max_body
        self.max_connections = max_connections or default_max_connections(workers)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="advtopo-serve")
        self._idle: dict[Connection, None] = {}  # waiting for a request, oldest deadline first
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._returned: SimpleQueue[Connection] = SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a wake-up already pending is enough
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        super().__init__(address, handler)  # binds and listens (closes all of the above when it cannot)

    # ---- the loop -----------------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stopped.clear()
        self._stopping.clear()
        sel = selectors.DefaultSelector()
        self.socket.setblocking(False)
        sel.register(self.socket, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=poll_interval):
                    if key.fileobj is self.socket:
                        self._accept(sel)
                    elif key.fileobj is self._wake_r:
                        self._take_back(sel)
                    else:
                        self._read(sel, key.data)
                self._expire(sel)
        finally:
            for conn in list(self._idle):
                self._drop(sel, conn)
            sel.close()
            self._stopped.set()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        for _ in range(1024):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of file descriptors: make room, accept on the next round
                self._drop_oldest(sel)
                return
            with self._busy_lock:
                busy = self._busy
            if len(self._idle) + busy >= self.max_connections and not self._drop_oldest(sel):
                sock.close()
                continue
            sock.settimeout(self.read_timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            except OSError:
                pass
            conn = Connection(sock, address, self.read_timeout)
            self._idle[conn] = None
            sel.register(sock, selectors.EVENT_READ, conn)

    def _read(self, sel: selectors.BaseSelector, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)  # readable: returns at once
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sel, conn)
            return
        conn.buffer += data
        if conn.request_ready(self.max_body):
            sel.unregister(conn.sock)
            del self._idle[conn]
            self._dispatch(conn)

    def _dispatch(self, conn: Connection) -> None:
        with self._busy_lock:
            self._busy += 1
        self._pool.submit(self._serve, conn)

    def _take_back(self, sel: selectors.BaseSelector) -> None:
        """Kept-alive connections whose answer was sent: wait for their next request."""
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                conn = self._returned.get_nowait()
            except Empty:
                return
            if conn.request_ready(self.max_body):  # the client sent its next request already
                self._dispatch(conn)
            else:
                self._idle[conn] = None
                sel.register(conn.sock, selectors.EVENT_READ, conn)

    def _expire(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for conn in list(self._idle):
            if conn.deadline > now:
                break  # in deadline order
            self._drop(sel, conn)

    def _drop_oldest(self, sel: selectors.BaseSelector) -> bool:
        if not self._idle:
            return False
        self._drop(sel, next(iter(self._idle)))
        return True

    def _drop(self, sel: selectors.BaseSelector, conn: Connection) -> None:
        if conn in self._idle:
            del self._idle[conn]
            sel.unregister(conn.sock)
        conn.close()

    # ---- the workers --------------------------------------------------------------------
    def _serve(self, conn: Connection) -> None:
        keep = False
        try:
            conn.deadline = time.monotonic() + self.read_timeout  # for a body sent after "100 Continue"
            handler = self.RequestHandlerClass(conn, conn.address, self)
            keep = not handler.close_connection
        except Exception:  # noqa: BLE001  (reported by handle_error; the connection is closed)
            self.handle_error(conn.sock, conn.address)
        finally:
            with self._busy_lock:
                self._busy -= 1
            if keep and not self._stopping.is_set():
                conn.deadline = time.monotonic() + self.read_timeout
                self._returned.put(conn)
                self._wake()
            else:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a new page, a cancelled image) is not an error; the rest is
        reported on stderr, never to the client."""
        if isinstance(sys.exc_info()[1], _DROPPED):
            return
        super().handle_error(request, client_address)

    def shutdown(self) -> None:
        self._stopping.set()
        self._wake()
        self._stopped.wait()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (the loop will wake anyway) or closed
            pass

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                self._returned.get_nowait().close()
            except Empty:
                break
        self._wake_r.close()
        self._wake_w.close()
