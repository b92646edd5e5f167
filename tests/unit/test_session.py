"""build_client: interactive commands give up on an unreachable host after one retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.api.errors import NetworkError
from kprov.cli.session import build_client
from kprov.config import resolve_settings
from kprov.credentials import Secret


def _closed_port_settings(tmp_path: Path, port: int):  # type: ignore[no-untyped-def]
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
