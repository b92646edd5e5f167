"""build_client: interactive commands give up in seconds (two attempts, short deadlines);
batch runs keep their patience."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.api.errors import NetworkError
from kprov.cli.session import build_client
from kprov.config import resolve_settings
from kprov.credentials import Secret


def _closed_port_settings(tmp_path: Path, port: int):
    return port, resolve_settings(
        env={
            "KPROV_CONFIG": str(tmp_path / "c.yaml"),
            "KPROV_BASE_URL": f"http://127.0.0.1:{port}/v0",
            "KPROV_API_KEY": "k",
        }
    )


@pytest.mark.parametrize(("interactive", "attempts"), [(True, 2), (False, 6)])
def test_refused_connections_are_tried_twice_when_someone_waits(
    tmp_path: Path, interactive: bool, attempts: int, closed_port: int
) -> None:
    port, settings = _closed_port_settings(tmp_path, closed_port)
    with (
        build_client(settings, pool_size=1, secret=Secret("s"), interactive=interactive) as client,
        pytest.raises(NetworkError) as caught,
    ):
        client.token_for()
    assert client.request_count == attempts
    assert f"no answer from 127.0.0.1:{port}: connection refused ({attempts} attempts)" in (
        caught.value.message
    )
    assert "connection refused" in caught.value.message
    assert "resume" not in str(caught.value)


def _policy(settings, **kwargs):
    with build_client(settings, pool_size=1, secret=Secret("s"), **kwargs) as client:
        retry, limits = client.transport.retry, client.transport.limits
    return (
        (retry.max_attempts, retry.connect_attempts, retry.max_rate_limit_waits),
        (limits.connect_timeout, limits.read_timeout, limits.deadline, limits.max_server_wait),
    )


def test_interactive_commands_wait_seconds_and_batch_runs_keep_their_patience(
    tmp_path: Path, closed_port: int
) -> None:
    _, settings = _closed_port_settings(tmp_path, closed_port)
    attempts, limits = _policy(settings, interactive=True)
    assert attempts == (2, 2, 1)  # any failure, a refused port or a 429 alike: tried twice
    assert limits == (5.0, 15.0, 15.0, 15.0)
    # A deadline is never retried: against a stalled server, a token and a call, 15 s each.
    assert 2 * limits[2] <= 30
    assert _policy(settings) == ((6, None, 30), (10.0, 30.0, 60.0, 120.0))


@pytest.mark.parametrize(
    ("env", "attempts", "deadline"),
    [
        ({"KPROV_REQUEST_DEADLINE": "120", "KPROV_RETRY_MAX_ATTEMPTS": "10"}, 2, 15.0),
        ({"KPROV_REQUEST_DEADLINE": "0.5", "KPROV_RETRY_MAX_ATTEMPTS": "1"}, 1, 0.5),
    ],
    ids=["longer: capped", "shorter: kept"],
)
def test_the_environment_can_shorten_interactive_patience_never_lengthen_it(
    tmp_path: Path,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    attempts: int,
    deadline: float,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _, settings = _closed_port_settings(tmp_path, closed_port)
    (max_attempts, _, _), (_, _, got_deadline, _) = _policy(settings, interactive=True)
    assert (max_attempts, got_deadline) == (attempts, deadline)


def test_a_refused_port_ends_an_interactive_command_in_about_a_second(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KPROV_RETRY_BASE_DELAY")  # the real backoff, not the suite's
    _, settings = _closed_port_settings(tmp_path, closed_port)
    waits: list[float] = []
    with (
        build_client(settings, pool_size=1, secret=Secret("s"), interactive=True) as client,
        pytest.raises(NetworkError),
    ):
        client.transport.sleep = waits.append  # the waits the client chose, none taken
        client.token_for()
    # about a second: two attempts with one wait between them, of at most the 0.5 s base
    assert client.request_count == 2
    assert len(waits) == 1 and 0 <= waits[0] <= 0.5
