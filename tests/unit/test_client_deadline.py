"""Answers that end early are no answers: a deadline that cut the headers or the body, and a
body shorter than its Content-Length, never reach a parser (raw sockets: no library would
send these)."""

from __future__ import annotations

import functools
import queue
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import urllib3.connectionpool

from kprov.api.client import KnewtonClient
from kprov.api.errors import NetworkError
from kprov.api.pacing import Pacer, RetryPolicy
from kprov.api.transport import Limits
from kprov.credentials import Secret

TOKEN_BODY = b'{"access_token": "acc-1", "refresh_token": "ref-1", "expires_in": 3599}'


def whole(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\nConnection: close\r\n\r\n" + body


# What arrives before the deadline: a status line and half a header; or whole headers without
# Content-Length (the body runs to the end of the connection) and half a body.
HALF_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/js"
HALF_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + TOKEN_BODY[:30]


Route = Callable[[str], tuple[bytes, str]]


class RawServer:
    """Answers each request with the bytes ``route(request line)`` gives, and how: at once
    then close, all but the last byte then hold the connection ("stall"), or "trickle"."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.seen: list[str] = []
        self.trickled: queue.Queue[tuple[int, int]] = queue.Queue()  # (bytes sent, of)
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            while len(body) < length:  # read it all: closing on unread data would be a reset
                body += conn.recv(65536)
            line = head.split(b"\r\n")[0].decode()
            self.seen.append(line)
            answer, how = self.route(line)
            if how == "close":
                conn.sendall(answer)
            elif how == "stall":
                # The last byte comes late, so the socket's own read timeout (never longer
                # than the deadline) restarts and the deadline is what cuts the answer.
                conn.sendall(answer[:-1])
                if not self.stop.wait(0.15):
                    conn.sendall(answer[-1:])
                self.stop.wait(10)
            else:  # "trickle": the head at once, then the body a byte every 50 ms
                head, _, body = answer.partition(b"\r\n\r\n")
                conn.sendall(head + b"\r\n\r\n")
                sent = 0
                for index in range(len(body)):
                    if self.stop.wait(0.05):
                        break
                    try:
                        conn.sendall(body[index : index + 1])
                    except OSError:
                        break  # the client gave up, as it should
                    sent += 1
                self.trickled.put((sent, len(body)))

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Route], RawServer]]:
    servers: list[RawServer] = []

    def start(route: Route) -> RawServer:
        servers.append(RawServer(route))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client_for(server: RawServer, deadline: float = 0.5) -> KnewtonClient:
    return KnewtonClient(
        base_url=f"http://127.0.0.1:{server.port}/v0",
        api_key="key-1",
        api_secret=Secret("s3cr3t"),
        pacer=Pacer(quotas={}),
        retry=RetryPolicy(max_attempts=3, base_delay=0.001),
        limits=Limits(deadline=deadline),
    )


@pytest.mark.parametrize("cut", [HALF_HEADERS, HALF_BODY], ids=["headers", "body"])
@pytest.mark.parametrize("endpoint", ["token", "api"])
def test_an_answer_the_deadline_cut_short_is_no_answer_never_a_parsed_fragment(
    raw_server: Callable[..., RawServer], cut: bytes, endpoint: str
) -> None:
    """The watchdog's shutdown reads as a quiet end-of-file: without a look at the deadline,
    the fragment went to the JSON parser ("the answer is not JSON", or worse)."""

    def route(line: str) -> tuple[bytes, str]:
        if "/oauth/token" in line and endpoint == "api":
            return whole(TOKEN_BODY), "close"
        return cut, "stall"

    server = raw_server(route)
    with client_for(server) as client, pytest.raises(NetworkError) as caught:
        if endpoint == "token":
            client.token_for()
        else:
            client.current_account()
    error = caught.value
    path = "POST /oauth/token" if endpoint == "token" else "GET /accounts/current"
    assert str(error).startswith(
        f"{path}: no answer from 127.0.0.1:{server.port}: no complete answer within the 0.5 s "
        "deadline"
    )
    assert "not JSON" not in str(error)
    assert error.outcome_unknown  # the server may have applied it before it stalled
    assert error.exit_code == 4
    assert len(server.seen) == (1 if endpoint == "token" else 2)  # no resend of a slow answer


def test_a_body_shorter_than_its_content_length_is_no_answer_where_urllib3_does_not_check(
    raw_server: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib3 1.26 (which requests still accepts) hands back a short body as the whole one;
    here it is a well-formed token, 200 bytes short of what was announced."""
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen
    monkeypatch.setattr(
        urllib3.connectionpool.HTTPConnectionPool,
        "urlopen",
        functools.partialmethod(original, enforce_content_length=False),
    )
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    short = head + str(len(TOKEN_BODY) + 200).encode() + b"\r\n\r\n" + TOKEN_BODY
    server = raw_server(lambda line: (short, "close"))
    with client_for(server, deadline=5) as client, pytest.raises(NetworkError) as caught:
        client.token_for()
    assert (
        f"the connection closed after {len(TOKEN_BODY)} of the {len(TOKEN_BODY) + 200} bytes "
        "the answer announced (3 attempts)"
    ) in str(caught.value)
    assert caught.value.outcome_unknown


def test_the_deadline_also_cuts_a_body_trickled_on_a_connection_that_will_close(
    raw_server: Callable[..., RawServer],
) -> None:
    """http.client forgets the socket of an answer that will close the connection: the
    deadline used to find nothing to cut, and a trickled body ran on (here 3.5 s)."""
    server = raw_server(lambda line: (whole(TOKEN_BODY), "trickle"))
    with client_for(server) as client, pytest.raises(NetworkError) as caught:
        client.token_for()
    assert "no complete answer within the 0.5 s deadline" in str(caught.value)
    # cut: the server's sending failed after about a tenth of the body (a byte each 50 ms,
    # 0.5 s), where it used to send all of it; one attempt (a deadline is not retried)
    sent, whole_body = server.trickled.get(timeout=5)
    assert sent < whole_body // 2 and len(server.seen) == 1


def test_a_whole_answer_with_its_content_length_is_read_as_before(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(lambda line: (whole(TOKEN_BODY), "close"))
    with client_for(server) as client:
        assert client.token_for().access_token == "acc-1"
