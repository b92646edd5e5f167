"""The sandbox really is the adversary it claims to be: raw HTTP, no kprov client in between."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest
import requests

from kprov.config import SANDBOX_API_SECRET
from kprov.sandbox.hostile import MODES, Hostility, parse_modes
from kprov.sandbox.server import SandboxHTTPServer
from tests.budgets import RecordingEvent
from tests.conftest import SANDBOX_KEY, Sandbox, start_sandbox
from tests.helpers import run_cli

AUTH = (SANDBOX_KEY, SANDBOX_API_SECRET)


def admin_token(box: Sandbox) -> str:
    answer = requests.post(
        box.base_url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=AUTH,
        timeout=5,
    )
    return str(answer.json()["access_token"])


def post(box: Sandbox, path: str, body: Any, token: str) -> requests.Response:
    return requests.post(
        box.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
        allow_redirects=False,
    )


def batch_body(ids: list[str]) -> dict[str, Any]:
    return {
        "requests": [
            {"method": "post", "relative_url": "/accounts", "body": {"external_user_id": i}}
            for i in ids
        ]
    }


def test_modes_and_rates_are_checked() -> None:
    assert parse_modes("reorder, stall=0.25") == {"reorder": 1.0, "stall": 0.25}
    for bad in ("bogus", "reorder=2", "reorder=0", "reorder=x"):
        with pytest.raises(ValueError):
            parse_modes(bad)
    result = run_cli("sandbox", "serve", "--port", "0", "--hostile", "bogus")
    assert result.exit_code == 2


def test_every_mode_is_documented_in_serve_help() -> None:
    text = run_cli("sandbox", "serve", "--help").stdout
    assert all(f"\n    {mode} " in text for mode in MODES)


def test_the_same_seed_makes_the_same_choices() -> None:
    first, second = Hostility("reorder=0.5", seed=4), Hostility("reorder=0.5", seed=4)
    assert [first.fires("reorder") for _ in range(50)] == [
        second.fires("reorder") for _ in range(50)
    ]


def test_reorder_shuffles_the_items_but_keeps_their_ids() -> None:
    box = start_sandbox(hostile=Hostility("reorder", seed=1))
    try:
        ids = [f"r{n}" for n in range(10)]
        items = post(box, "/batch", batch_body(ids), admin_token(box)).json()["responses"]
    finally:
        box.server.stop()
    named = [i["body"]["external_user_id"] for i in items]
    assert sorted(named) == sorted(ids) and named != ids


def test_climbing_ids_point_at_an_account() -> None:
    box = start_sandbox(hostile=Hostility("climbing-id", seed=1))
    try:
        token = admin_token(box)
        answer = post(box, "/learning-instances", {"graph_id": "g", "name": "A"}, token).json()
    finally:
        box.server.stop()
    assert answer["id"] == f"../accounts/{box.store.admin_id}"


def test_dialect_409_answers_a_real_duplicate_with_a_conflict() -> None:
    box = start_sandbox(hostile=Hostility("dialect-409", seed=1))
    try:
        token = admin_token(box)
        post(box, "/accounts", {"external_user_id": "d1"}, token)
        again = post(box, "/accounts", {"external_user_id": "d1"}, token)
    finally:
        box.server.stop()
    assert (again.status_code, again.json()["message"]) == (409, "Conflict: account already exists")


def test_echo_token_really_echoes_the_credentials() -> None:
    box = start_sandbox(hostile=Hostility("echo-token", seed=1))
    try:
        answer = requests.post(
            box.base_url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=AUTH,
            timeout=5,
        )
    finally:
        box.server.stop()
    basic = base64.b64encode(f"{SANDBOX_KEY}:{SANDBOX_API_SECRET}".encode()).decode()
    assert answer.status_code == 400
    assert basic in answer.text and SANDBOX_API_SECRET in answer.text


def raw_request(box: Sandbox, path: str) -> socket.socket:
    host, port = box.server.server_address[:2]
    sock = socket.create_connection((str(host), int(port)), timeout=5)
    body = b"grant_type=client_credentials"
    basic = base64.b64encode(f"{SANDBOX_KEY}:{SANDBOX_API_SECRET}".encode())
    sock.sendall(
        b"POST /v0" + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic
        + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip
    return sock


def test_trickle_sends_one_byte_per_interval() -> None:
    box = start_sandbox(hostile=Hostility("trickle-token", seed=1, trickle=0.2))
    box.server.stopping = stopping = RecordingEvent()  # the trickle's pause between bytes
    try:
        sock = raw_request(box, "/oauth/token")
        first = sock.recv(100)
        second = sock.recv(100)
        sock.close()
    finally:
        box.server.stop()
    assert (first, second) == (b"H", b"T")  # each byte alone: a pause came between them
    assert len(stopping.waits) >= 2 and set(stopping.waits) == {0.2}  # the interval, each time


def test_a_stalled_answer_never_comes_and_stop_is_still_quick() -> None:
    box = start_sandbox(hostile=Hostility("stall-token", seed=1))
    box.server.stopping = stopping = RecordingEvent()
    sock = raw_request(box, "/oauth/token")
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(100)
    box.server.stop()
    # the stall waited on the stop event, not on a clock: stop ended it and dropped the
    # connection (no answer, ever), and every thread of the server is gone
    assert stopping.waits == [None]
    assert sock.recv(100) == b""
    assert box.server._thread is not None and not box.server._thread.is_alive()
    sock.close()


def test_a_sandbox_starts_and_stops_in_a_fraction_of_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stop() waits for the serving loop's next look at its flag: 0.5 s by default, which
    cost ~40 s of a suite that starts 100 sandboxes."""
    polls: list[float] = []
    serve = SandboxHTTPServer.serve_forever

    def serving(self: SandboxHTTPServer, poll_interval: float = 0.5) -> None:
        polls.append(poll_interval)
        serve(self, poll_interval)

    monkeypatch.setattr(SandboxHTTPServer, "serve_forever", serving)
    for _ in range(5):
        start_sandbox().server.stop()
    assert polls == [0.02] * 5
