"""A total deadline per request: connect, headers and the whole body, whatever the server does.

``requests`` has no total timeout (its read timeout applies to each ``recv``, so a server that
trickles one byte every few seconds keeps a call alive for ever; requests/requests#4276,
urllib3/urllib3#1741). Here each attempt runs under a ``Deadline``: a timer that, when the time
is up, shuts down the socket the attempt is using, so the blocked read returns at once and the
caller reports a clear error. The connection is found through the connection pool
(``_get_conn``), the one place every attempt, new or reused connection, passes through; its
socket is the one it connected (http.client forgets it once an answer will close the
connection, while that answer's body is still being read).

One watchdog thread keeps every deadline of the process (a heap, earliest first): a timer
thread per attempt cost ~0.16 ms of CPU a request, as much as the rest of kprov's own work.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """One attempt's deadline; use as a context manager around the whole exchange.

    A cut read often ends in a quiet end-of-file, not an exception (http.client takes it for
    the end of the headers or of the body): check ``expired`` after the exchange, and treat
    whatever was read as a fragment when it is set.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._done = False

    def __enter__(self) -> Deadline:
        _current.deadline = self
        _WATCHDOG.watch(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        _WATCHDOG.forget()
        _current.deadline = None

    def track(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection in self._connections:
                _shut(connection)


class _Watchdog:
    """Expires deadlines when they are due: one daemon thread, started on first use.

    Finished deadlines stay in the heap until they reach its top or until they are the
    majority (then the heap is rebuilt without them), so watching costs a push and no wake-up.
    """

    COMPACT_AFTER = 1024  # finished deadlines tolerated in the heap before it is rebuilt

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._finished = 0
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, when: float) -> None:
        with self._cond:
            if self._finished > self.COMPACT_AFTER and 2 * self._finished > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
                self._finished = 0
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kprov-deadlines")
                self._thread.daemon = True
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._cond.notify()  # earlier than what the thread sleeps until

    def forget(self) -> None:
        """A deadline finished (its entry is dropped lazily)."""
        with self._cond:
            self._finished += 1

    def _run(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2]._done:
                    heapq.heappop(heap)
                    self._finished = max(0, self._finished - 1)
                if not heap:
                    self._cond.wait()
                    continue
                when, _order, deadline = heap[0]
                now = time.monotonic()
                if when > now:
                    self._cond.wait(when - now)
                    continue
                heapq.heappop(heap)
                self._cond.release()
                try:
                    deadline._expire()
                finally:
                    self._cond.acquire()


_WATCHDOG = _Watchdog()


def _shut(connection: Any) -> None:
    """Wake a thread blocked reading this connection: its recv returns end-of-file."""
    sock = getattr(connection, "sock", None) or getattr(connection, "watched_sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _track(connection: Any) -> Any:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.track(connection)
    return connection


class _WatchedHTTPConnection(HTTPConnection):
    """Keeps its socket where a deadline finds it: http.client drops ``sock`` as soon as an
    answer will close the connection (``Connection: close``, or no length), while its body
    is still read from that socket, and a trickled body would then outlive any deadline."""

    watched_sock: Any = None

    def connect(self) -> None:
        super().connect()
        self.watched_sock = self.sock


class _WatchedHTTPSConnection(HTTPSConnection):
    watched_sock: Any = None

    def connect(self) -> None:
        super().connect()
        self.watched_sock = self.sock


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections a ``Deadline`` can cut (also through an HTTP proxy)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools keep per-recv timeouts only
            manager.pool_classes_by_scheme = _POOLS
        return manager
