"""Credentials go over https, or plain http to this machine only: from flags, env and config."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.api.urls import UnsafeUrl, check_credential_url, parse_endpoint
from kprov.config import resolve_settings
from kprov.errors import ConfigError
from tests.helpers import run_cli

REFUSED = [
    "http://api.example.com/v0",
    "HTTP://API.EXAMPLE.COM/v0",
    "http://localhost:1@10.0.0.9/v0",  # userinfo hides the real host
    "https://user:secret@api.example.com/v0",
    "http://127.0.0.1\\@evil.example/v0",
    "http://evil.example#@127.0.0.1/v0",
    "http://evil.example?@127.0.0.1/v0",
    "http://127.0.0.1.nip.io/v0",
    "http://[::ffff:10.0.0.9]/v0",
    "http://0x7f000001/v0",
    "http://127.0.0.1:99999/v0",
    "http://127.0.0.1 /v0",
    "ftp://127.0.0.1/v0",
    "https:///v0",
    "",
]
ALLOWED = [
    ("https://api.knewton.com/v0/", "https://api.knewton.com/v0", "api.knewton.com:443"),
    ("HTTPS://API.KNEWTON.COM/v0", "HTTPS://API.KNEWTON.COM/v0", "api.knewton.com:443"),
    ("http://127.0.0.1:8765/v0", "http://127.0.0.1:8765/v0", "127.0.0.1:8765"),
    ("http://127.8.9.10/v0", "http://127.8.9.10/v0", "127.8.9.10:80"),
    ("http://[::1]:8765/v0", "http://[::1]:8765/v0", "[::1]:8765"),
    ("http://LOCALHOST./v0", "http://LOCALHOST./v0", "localhost.:80"),
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_that_would_leak_credentials_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        check_credential_url(url, "token URL")
    assert caught.value.exit_code == 3
    assert "token URL" in str(caught.value)


@pytest.mark.parametrize(("url", "checked", "where"), ALLOWED)
def test_https_and_loopback_http_are_allowed(url: str, checked: str, where: str) -> None:
    assert check_credential_url(url) == checked
    assert parse_endpoint(checked).where == where


def env_with(**extra: str) -> dict[str, str]:
    return {"KPROV_BASE_URL": "https://api.example.com/v0", "KPROV_API_KEY": "k", **extra}


@pytest.mark.parametrize(
    "env",
    [
        env_with(KPROV_BASE_URL="http://localhost:1@10.0.0.9/v0"),
        env_with(KPROV_TOKEN_URL="http://auth.example.com/oauth/token"),
        env_with(KPROV_TOKEN_URL="https://k:s@auth.example.com/oauth/token"),
    ],
)
def test_settings_from_the_environment_are_checked(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        resolve_settings(config_option=str(tmp_path / "none.yaml"), env=env)


def test_a_token_url_in_the_config_file_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "current_profile: p\nprofiles:\n  p:\n    base_url: https://api.example.com/v0\n"
        "    api_key: k\n    token_url: http://auth.example.com/oauth/token\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="token URL"):
        resolve_settings(config_option=str(config), env={})


@pytest.mark.parametrize(
    "flags",
    [
        ["--base-url", "http://localhost:1@10.0.0.9/v0"],
        ["--base-url", "https://api.example.com/v0", "--token-url", "http://auth.example.com/t"],
    ],
)
def test_profile_flags_are_checked(flags: list[str]) -> None:
    result = run_cli("profile", "add", "p", "--api-key", "k", *flags)
    assert result.exit_code == 3


@pytest.mark.parametrize(
    "url",
    [
        "https://u:hunter2@api.example.test/v0",
        "http://hunter2@10.0.0.9/v0",
        "https://:hunter2@x/v0",
    ],
)
def test_a_credential_written_into_a_url_never_reaches_the_message(url: str) -> None:
    from kprov.api.urls import UnsafeUrl, check_credential_url

    with pytest.raises(UnsafeUrl) as refused:
        check_credential_url(url)
    assert "hunter2" not in str(refused.value) and "<hidden>@" in str(refused.value)
