"""Whose state this is: a differing base URL is named as the typo it usually is."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import ConfigError
from kprov.state.owner import check_owner


def refusal(tmp_path: Path, recorded: str, used: str) -> ConfigError:
    check_owner(tmp_path, {"base_url": recorded})
    with pytest.raises(ConfigError) as caught:
        check_owner(tmp_path, {"base_url": used})
    return caught.value


def test_a_base_url_that_lost_its_version_is_named_as_a_typo(tmp_path: Path) -> None:
    error = refusal(tmp_path, "https://api.example.org/v0", "https://api.example.org")
    assert "belongs to another setup" in error.message
    assert "did you mean https://api.example.org/v0?" in str(error.hint)
    assert "KPROV_STATE_DIR" not in str(error.hint)  # a new state is not the fix


def test_a_sandbox_on_another_port_names_the_port_it_was_made_on(tmp_path: Path) -> None:
    error = refusal(tmp_path, "http://127.0.0.1:8799/v0", "http://127.0.0.1:8765/v0")
    assert "KPROV_SANDBOX_PORT=8799" in str(error.hint)
    assert "kprov sandbox reset" in str(error.hint)


def test_another_api_gets_a_state_directory_of_its_own(tmp_path: Path) -> None:
    error = refusal(tmp_path, "https://api.knewton.ie/v0", "https://api.knewton.com/v0")
    assert "KPROV_STATE_DIR" in str(error.hint)
