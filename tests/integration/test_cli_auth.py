"""`kprov auth` and `kprov profile` over real HTTP against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from tests.budgets import record_budget
from tests.conftest import Sandbox
from tests.helpers import TERMINAL, run_cli
from tests.keyrings import MemoryKeyring


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
    assert [(p["name"], p["current"], p["builtin"]) for p in listed["profiles"]] == [
        ("emea", True, False),
        ("prod", False, False),
        ("sandbox", False, True),
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
    memory = MemoryKeyring()
    keyring.set_keyring(memory)  # the isolated_env fixture puts the fail backend back after
    result = run_cli("auth", "login", "--secret-stdin", input="wrong\n")
    assert result.exit_code == 3
    assert "refused" in result.stderr
    assert memory.store == {}


def test_login_without_a_keyring_says_so_before_asking_for_the_secret(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a headless box nobody should type a secret only to hear it cannot be stored."""
    import kprov.cli.auth as auth_cli

    asked: list[str] = []

    def prompt(text: str, **_options: object) -> str:
        asked.append(text)
        return "s"

    monkeypatch.setattr(auth_cli.typer, "prompt", prompt)
    writes = sandbox_env.write_requests()
    result = run_cli("auth", "login", env=TERMINAL)
    assert result.exit_code == 3, result.output
    assert "no usable keyring" in result.stderr and "KPROV_API_SECRET_FILE" in result.stderr
    assert asked == [] and sandbox_env.write_requests() == writes


def test_version_names_kprov_python_and_the_platform() -> None:
    import platform

    from kprov import __version__

    shown = run_cli("--version").stdout
    assert shown.startswith(f"kprov {__version__} (")
    assert platform.python_version() in shown and platform.system() in shown
    assert "accounts" in run_cli("--help").stdout


@pytest.mark.parametrize("command", [("auth", "status"), ("auth", "login", "--secret-stdin")])
def test_unreachable_host_fails_after_two_quick_attempts_naming_host_and_port(
    command: tuple[str, ...], closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """About a second, whatever the load: the attempts and the waits between them are
    counted (the real backoff, not the suite's: one wait of at most the 0.5 s base)."""
    port = closed_port
    monkeypatch.delenv("KPROV_RETRY_BASE_DELAY")
    monkeypatch.setenv("KPROV_BASE_URL", f"http://127.0.0.1:{port}/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    monkeypatch.setenv("KPROV_API_SECRET", "s")
    keyring.set_keyring(MemoryKeyring())  # login needs a keyring (the fixture restores it)
    budget = record_budget(monkeypatch)
    done = run_cli(*command, input="s\n")
    assert done.exit_code == 4, done.stderr
    assert f"no answer from 127.0.0.1:{port}: connection refused (2 attempts)" in done.stderr
    assert len(budget.deadlines) == 2  # one retry, not six
    assert len(budget.waits) == 1 and budget.waits[0] <= 0.5
    assert "rerun" not in done.stderr and "resume" not in done.stderr


def test_unresolvable_host_is_named_too(
    isolated_env: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPROV_BASE_URL", "https://kprov-test.invalid/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    monkeypatch.setenv("KPROV_API_SECRET", "s")
    result = run_cli("accounts", "current")
    assert result.exit_code == 4
    assert "kprov-test.invalid:443" in result.stderr and "could not be resolved" in result.stderr


def test_status_names_the_secret_source_never_the_secret(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KPROV_API_SECRET")
    secret_file = tmp_path / "secret"
    secret_file.write_text("sandbox-secret\n")
    secret_file.chmod(0o600)
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(secret_file))
    result = run_cli("auth", "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["secret_source"] == {
        "source": "file",
        "location": f"{secret_file} (KPROV_API_SECRET_FILE)",
    }
    assert "sandbox-secret" not in result.output


def test_group_readable_secret_file_exits_3_with_the_chmod(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KPROV_API_SECRET")
    secret_file = tmp_path / "secret"
    secret_file.write_text("sandbox-secret\n")
    secret_file.chmod(0o640)
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(secret_file))
    result = run_cli("auth", "status")
    assert result.exit_code == 3
    assert f"Run: chmod 600 {secret_file}" in result.stderr
    assert sandbox_env.requests() == {}


def test_id_key_generate_prints_once_without_a_keyring_and_the_key_works(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KPROV_BASE_URL", "https://x.test/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    result = run_cli("auth", "id-key", "generate")
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert len(bytes.fromhex(key)) == 32 and result.stdout == key + "\n"
    assert "no usable keyring" in result.stderr and "keep it forever" in result.stderr
    assert key not in result.stderr
    key_file = tmp_path / "id-key"
    key_file.write_text(result.stdout)
    key_file.chmod(0o600)
    monkeypatch.setenv("KPROV_ID_KEY_FILE", str(key_file))
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id\n12345\n")
    planned = run_cli("accounts", "import", str(roster), "--hash-ids", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert key not in planned.output


def test_id_key_generate_stores_in_the_keyring_and_never_replaces(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    monkeypatch.setenv("KPROV_BASE_URL", "https://x.test/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    first = run_cli("--profile", "prod", "auth", "id-key", "generate")
    assert first.exit_code == 0 and first.stdout == ""
    stored = memory.store[("kprov", "prod:id-key")]
    assert len(bytes.fromhex(stored)) == 32 and stored not in first.output
    again = run_cli("--profile", "prod", "auth", "id-key", "generate")
    assert again.exit_code == 3 and "will not replace" in again.stderr
    assert memory.store[("kprov", "prod:id-key")] == stored
    printed = run_cli("auth", "id-key", "generate", "--print")
    assert printed.exit_code == 0 and printed.stdout.strip() != stored


def test_hash_ids_without_a_key_points_at_id_key_generate(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KPROV_BASE_URL", "https://x.test/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id\n12345\n")
    result = run_cli("accounts", "import", str(roster), "--hash-ids", "--dry-run")
    assert result.exit_code == 3
    assert "auth id-key generate" in result.stderr
