"""`kprov auth` and `kprov profile` over real HTTP against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Sandbox
from tests.helpers import run_cli


def test_auth_status_names_the_partner_admin(sandbox_env: Sandbox) -> None:
    result = run_cli("auth", "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["external_user_id"] == "partner-admin"
    assert data["base_url"] == sandbox_env.base_url


def test_wrong_secret_exits_3_with_advice(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPROV_API_SECRET", "not-the-secret")
    result = run_cli("auth", "status")
    assert result.exit_code == 3
    assert "secret was refused" in result.stderr
    assert "not-the-secret" not in result.output


def test_missing_secret_without_keyring_exits_3_without_traceback(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KPROV_API_SECRET")
    env = {k: v for k, v in __import__("os").environ.items()}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    done = subprocess.run(
        [sys.executable, "-m", "kprov", "auth", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "KPROV_API_SECRET" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_debug_output_never_contains_the_secret_or_tokens(sandbox_env: Sandbox) -> None:
    result = run_cli("--debug", "auth", "status")
    assert result.exit_code == 0
    assert "POST /oauth/token" in result.stderr
    assert "sandbox-secret" not in result.output
    with sandbox_env.store.lock:
        tokens = list(sandbox_env.store.tokens) + list(sandbox_env.store.refresh_tokens)
    assert tokens and not any(t in result.output for t in tokens)


def test_profile_add_list_use(isolated_env: object) -> None:
    assert (
        run_cli(
            "profile", "add", "prod", "--base-url", "https://api.example.test/v0", "--api-key", "k"
        ).exit_code
        == 0
    )
    assert (
        run_cli(
            "profile", "add", "emea", "--base-url", "https://api.example.ie/v0", "--api-key", "k2"
        ).exit_code
        == 0
    )
    assert run_cli("profile", "use", "emea").exit_code == 0
    listed = json.loads(run_cli("profile", "list", "--json").stdout)
    assert [(p["name"], p["current"]) for p in listed["profiles"]] == [
        ("emea", True),
        ("prod", False),
    ]
    assert run_cli("profile", "use", "nope").exit_code == 3


def test_login_reads_the_secret_from_stdin_and_refuses_without_keyring(
    sandbox_env: Sandbox,
) -> None:
    result = run_cli("auth", "login", "--secret-stdin", input="sandbox-secret\n")
    assert result.exit_code == 3  # verified fine, but this machine has no keyring to store in
    assert "KPROV_API_SECRET" in result.stderr
    assert "sandbox-secret" not in result.output


def test_login_refuses_a_wrong_secret_before_storing(sandbox_env: Sandbox) -> None:
    result = run_cli("auth", "login", "--secret-stdin", input="wrong\n")
    assert result.exit_code == 3
    assert "refused" in result.stderr


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("kprov ")
    assert "accounts" in run_cli("--help").stdout
