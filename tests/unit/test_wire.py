"""The request as kprov sends it without requests.Session: the same bytes, headers and
environment (proxies, CA bundle) as the Session sent; and one watchdog for every deadline."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
import responses

from kprov.api import deadline as deadline_module
from kprov.api.deadline import Deadline
from kprov.api.wire import Wire

BASE = "https://api.example.test/v0"


def _as_session_sends(method: str, url: str, **kwargs: Any) -> requests.PreparedRequest:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    session.headers["User-Agent"] = "kprov"
    return session.prepare_request(requests.Request(method, url, **kwargs))


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("POST", {"json": {"type": "learner", "name": "Zoë ✓"}}),
        ("POST", {"data": {"grant_type": "client_credentials", "scope": "a b&c"}}),
        ("DELETE", {}),
        ("GET", {}),
    ],
)
@responses.activate
def test_a_request_is_sent_as_the_session_sent_it(method: str, kwargs: dict[str, Any]) -> None:
    responses.add(method, f"{BASE}/registrations", json={})
    wire = Wire(pool_size=1)
    auth = {"Authorization": "Bearer t0k"}
    wire.send(method, f"{BASE}/registrations", headers={"request-label": "r"},
              authorization="Bearer t0k", timeout=(1, 1), **kwargs).close()  # fmt: skip
    sent = responses.calls[0].request
    expected = _as_session_sends(
        method, f"{BASE}/registrations", headers={"request-label": "r", **auth}, **kwargs
    )
    assert sent.body == expected.body
    assert dict(sent.headers) == dict(expected.headers)
    assert sent.url == expected.url


@responses.activate
def test_no_cookie_a_server_sets_is_sent_back() -> None:
    responses.add("POST", f"{BASE}/batch", json={}, headers={"Set-Cookie": "tracker=1; Path=/"})
    wire = Wire(pool_size=1)
    for _ in range(2):
        wire.send("POST", f"{BASE}/batch", headers={}, authorization=None, timeout=(1, 1)).close()
    assert "Cookie" not in responses.calls[1].request.headers


def test_proxies_and_the_ca_bundle_come_from_the_environment_once_per_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "direct.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company.pem")
    wire = Wire(pool_size=1)
    proxies, verify, _cert = wire._settings_for(f"{BASE}/batch")
    assert proxies.get("https") == "http://proxy.test:3128"
    assert verify == "/etc/ssl/company.pem"
    direct, _verify, _cert = wire._settings_for("https://direct.test/v0/batch")
    assert "https" not in direct  # NO_PROXY, as requests reads it
    monkeypatch.setenv("HTTPS_PROXY", "http://other.test:1")
    assert wire._settings_for(f"{BASE}/registrations")[0] is proxies  # read once per host


class _Socket:
    def __init__(self) -> None:
        self.shut = threading.Event()

    def shutdown(self, how: int) -> None:
        self.shut.set()


class _Connection:
    def __init__(self) -> None:
        self.sock = _Socket()


def test_a_deadline_shuts_its_connections_when_due_and_not_after_it_ended() -> None:
    due, ended = _Connection(), _Connection()
    later = Deadline(60)
    deadline_module._WATCHDOG.watch(later, time.monotonic() + 60)  # the watchdog sleeps for it
    with Deadline(0.05) as short:
        short.track(due)
        assert due.sock.shut.wait(2)  # woken although a later deadline was watched first
    assert short.expired
    with Deadline(0.05) as finished:
        finished.track(ended)
    time.sleep(0.1)
    assert not finished.expired and not ended.sock.shut.is_set()
    later.__exit__()


def test_finished_deadlines_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    watchdog = deadline_module._Watchdog()
    monkeypatch.setattr(deadline_module, "_WATCHDOG", watchdog)
    monkeypatch.setattr(watchdog, "COMPACT_AFTER", 10)
    for _ in range(500):
        with Deadline(60):
            pass
    assert len(watchdog._heap) <= 2 * 10 + 2
