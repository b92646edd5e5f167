"""`kprov config show` and `kprov profile show|remove|list`: settings you can see."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest

from kprov.config import SANDBOX_API_SECRET
from kprov.credentials import API_SECRET, Secret, store_secret
from tests.conftest import SANDBOX_KEY, Sandbox
from tests.helpers import TERMINAL, run_cli
from tests.keyrings import MemoryKeyring

SECRET = "s3cr3t-value-ABCDEF-123456"
ID_KEY = "f" * 64


def _add_prod(*extra: str) -> None:
    result = run_cli(
        "profile", "add", "prod", "--base-url", "https://api.example.test/v0", "--api-key", "k1",
        *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def _assert_no_secret(text: str) -> None:
    for secret in (SECRET, ID_KEY):
        assert secret[:6] not in text, "a secret (or a prefix of it) was shown"


def test_config_show_names_every_source_and_never_a_secret(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _add_prod("--use")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "kprov-id-key").write_text(ID_KEY)
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("KPROV_TOKEN_URL", "https://auth.example.test/oauth/token")
    monkeypatch.delenv("KPROV_RATE_LIMITS")

    result = run_cli("config", "show", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["settings"]
    sources = {key: (row["value"], row["source"]) for key, row in shown.items()}
    state = isolated_env / "state"
    assert sources == {
        "profile": ("prod", "config-file"),
        "config_file": (str(isolated_env / "config.yaml"), "env"),
        "base_url": ("https://api.example.test/v0", "config-file"),
        "api_key": ("k1", "config-file"),
        "token_url": ("https://auth.example.test/oauth/token", "env"),
        "state_dir": (str(state), "env"),
        "mapping": (str(state / "mapping.csv"), "derived"),
        "lock": (str(state / "kprov.lock"), "derived"),
        "rate_limits": ("documented quotas", "default"),
        "retries": ("6 attempts, backoff from 0.01 s", "env"),
        "ledger": (str(state / "ledger.sqlite3"), "derived"),
        "history_days": ("400 days", "default"),
        "auth_check_hours": ("20 hours", "default"),
        "notify": ("(none)", "default"),
        "notify_on": ("failure", "default"),
        "metrics_file": ("(none)", "default"),
        "max_creations": ("10% (none while the mapping holds under 100)", "default"),
        "removal_grace": ("1 run(s)", "default"),
        "source_min_seen": ("50 %", "default"),
        "source_max_shrink": ("50 %", "default"),
        "api_secret": ("<hidden>", "file"),
        "id_key": ("<hidden>", "systemd-credential"),
    }
    assert shown["api_secret"]["location"] == f"{secret_file} (KPROV_API_SECRET_FILE)"
    assert shown["profile"]["location"].endswith("current_profile")
    _assert_no_secret(result.output)

    text = run_cli("--profile", "prod", "config", "show")
    assert text.exit_code == 0
    lines = {line.split("\t")[0]: line for line in text.stdout.splitlines()}  # a pipe: TSV
    assert lines["setting"] == "setting\tvalue\tsource"
    assert "flag: --profile" in lines["profile"]
    assert "file: " in lines["API secret"] and "<hidden>" in lines["API secret"]
    _assert_no_secret(text.output)


def test_config_show_says_a_number_of_creations_is_a_limit_from_the_first_night(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a share waits for a mapping of 100; a number chosen is shown as it applies."""
    _add_prod("--use")
    monkeypatch.setenv("KPROV_MAX_CREATIONS", "25")
    result = run_cli("config", "show", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["max_creations"]["value"] == "25"


def test_config_show_reports_an_unusable_secret_without_failing(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _add_prod()
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o644)
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("KPROV_ID_KEY", "short")
    result = run_cli("config", "show", "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)["settings"]
    assert shown["api_secret"]["source"] == "error"
    assert "group or others" in shown["api_secret"]["location"]
    assert shown["id_key"]["source"] == "error" and "5 bytes" in shown["id_key"]["location"]
    assert "short" not in result.stdout.replace("(a short key", "")
    _assert_no_secret(result.output)


def test_config_show_for_the_keyring_and_for_nothing(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_prod()
    none = json.loads(run_cli("config", "show", "--json").stdout)["settings"]
    assert none["api_secret"]["source"] == "none"
    assert "KPROV_API_SECRET_FILE: not set" in none["api_secret"]["location"]
    assert "no usable keyring backend" in none["api_secret"]["location"]
    keyring.set_keyring(MemoryKeyring())
    store_secret(API_SECRET, "prod", Secret(SECRET))
    kept = json.loads(run_cli("config", "show", "--json").stdout)["settings"]["api_secret"]
    assert kept == {
        "value": "<hidden>",
        "source": "keyring",
        "location": "service kprov, user prod",
    }


def test_config_show_for_the_builtin_sandbox(isolated_env: Path) -> None:
    shown = json.loads(run_cli("--profile", "sandbox", "config", "show", "--json").stdout)[
        "settings"
    ]
    assert shown["base_url"]["source"] == "built-in"
    assert shown["api_secret"]["source"] == "built-in"
    assert shown["sandbox_port"] == {"value": "8765", "source": "default", "location": "8765"}


def test_profile_show(isolated_env: Path) -> None:
    _add_prod("--use", "--token-url", "https://auth.example.test/oauth/token")
    data = json.loads(run_cli("profile", "show", "prod", "--json").stdout)["profile"]
    assert data == {
        "name": "prod",
        "base_url": "https://api.example.test/v0",
        "api_key": "k1",
        "token_url": "https://auth.example.test/oauth/token",
        "current": True,
        "builtin": False,
    }
    text = run_cli("profile", "show", "sandbox").stdout
    assert text.startswith("profile sandbox (built-in)")
    assert run_cli("profile", "show", "nope").exit_code == 3


def test_profile_remove_asks_refuses_the_current_one_and_keeps_the_rest(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_prod("--use")
    added = run_cli("profile", "add", "old", "--base-url", "https://o.test/v0", "--api-key", "k")
    assert added.exit_code == 0
    refused = run_cli("profile", "remove", "old")  # no terminal, no --yes
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    declined = run_cli("profile", "remove", "old", input="n\n", env=TERMINAL)
    assert declined.exit_code == 2 and "Remove profile 'old'" in declined.stderr
    listed = json.loads(run_cli("profile", "list", "--json").stdout)["profiles"]
    assert [p["name"] for p in listed] == ["old", "prod", "sandbox"]
    assert run_cli("profile", "remove", "old", input="y\n", env=TERMINAL).exit_code == 0
    current = run_cli("profile", "remove", "prod", "--yes")
    assert current.exit_code == 3 and "--current" in current.stderr
    assert run_cli("profile", "remove", "sandbox", "--yes").exit_code == 3
    assert run_cli("profile", "remove", "prod", "--yes", "--current").exit_code == 0
    listed = json.loads(run_cli("profile", "list", "--json").stdout)["profiles"]
    assert [(p["name"], p["builtin"]) for p in listed] == [("sandbox", True)]
    config = (isolated_env / "config.yaml").read_text()
    assert "prod" not in config and "current_profile" not in config


def test_profile_use_accepts_the_builtin_sandbox(isolated_env: Path) -> None:
    assert run_cli("profile", "use", "sandbox").exit_code == 0
    shown = json.loads(run_cli("config", "show", "--json").stdout)["settings"]
    assert shown["profile"]["value"] == "sandbox"
    assert shown["base_url"]["source"] == "built-in"


def test_global_options_may_follow_the_command(isolated_env: Path) -> None:
    _add_prod()
    after = run_cli("config", "show", "--json", "--profile", "sandbox", "--no-color")
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["settings"]["profile"] == {
        "value": "sandbox",
        "source": "flag",
        "location": "--profile",
    }
    other = isolated_env / "other.yaml"
    listed = run_cli("profile", "list", "--json", f"--config={other}")
    assert json.loads(listed.stdout)["config"] == str(other)


def test_hoisting_moves_only_global_options_and_nothing_after_a_double_dash() -> None:
    import typer

    from kprov.cli.help import hoist_global_options as hoist_with
    from kprov.cli.main import app

    def hoist_global_options(args: list[str]) -> list[str]:
        return hoist_with(typer.main.get_command(app), args)

    assert hoist_global_options(["sync", "s.yaml", "--prune", "-p", "prod", "-v"]) == [
        "-p", "prod", "-v", "sync", "s.yaml", "--prune",
    ]  # fmt: skip
    assert hoist_global_options(["--debug", "accounts", "import", "--", "-q", "--profile"]) == [
        "--debug", "accounts", "import", "--", "-q", "--profile",
    ]  # fmt: skip
    assert hoist_global_options(["config", "show", "--profile"]) == ["config", "show", "--profile"]
    assert hoist_global_options(["mapping", "verify", "--json", "-p", "x"]) == [
        "--json", "-p", "x", "mapping", "verify",
    ]  # fmt: skip


def test_a_profile_names_its_secret_file_checked_like_kprov_api_secret_file(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    """`profile add --secret-file`: a cron box's secret without a keyring or a variable.
    The same 0600 rule as KPROV_API_SECRET_FILE, which still overrides it; the path is
    stored absolute (cron's working directory is not the operator's)."""
    secret = tmp_path / "prod.secret"
    secret.write_text(SANDBOX_API_SECRET + "\n")
    secret.chmod(0o644)
    add = ("profile", "add", "prod", "--base-url", sandbox.base_url, "--api-key", SANDBOX_KEY)
    monkeypatch.chdir(tmp_path)
    for wrong in ("prod.secret", "missing.secret"):  # others may read it; it does not exist
        refused = run_cli(*add, "--secret-file", wrong)
        assert refused.exit_code == 2 and "nothing was saved" in refused.stderr
    assert "chmod 600" in refused.stderr or "Create it" in refused.stderr
    assert not (isolated_env / "config.yaml").exists()
    secret.chmod(0o600)
    saved = run_cli(*add, "--secret-file", "prod.secret", "--use")
    assert saved.exit_code == 0 and "auth login" not in saved.stdout
    assert f"secret_file: {secret}" in (isolated_env / "config.yaml").read_text()

    status = json.loads(run_cli("--json", "auth", "status").stdout)
    assert status["secret_source"] == {
        "source": "file", "location": f"{secret} (profile prod secret_file)",
    }  # fmt: skip
    shown = json.loads(run_cli("config", "show", "--json").stdout)["settings"]["api_secret"]
    assert (shown["value"], shown["location"]) == (
        "<hidden>",
        f"{secret} (profile prod secret_file)",
    )
    assert SANDBOX_API_SECRET not in run_cli("profile", "show", "prod").stdout

    other = tmp_path / "env.secret"
    other.write_text("another\n")
    other.chmod(0o600)
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(other))  # the environment overrides
    shown = json.loads(run_cli("config", "show", "--json").stdout)["settings"]["api_secret"]
    assert shown["location"] == f"{other} (KPROV_API_SECRET_FILE)"
    monkeypatch.delenv("KPROV_API_SECRET_FILE")
    secret.chmod(0o640)  # loosened later: refused at use, naming the file and the fix
    loose = run_cli("auth", "status")
    assert loose.exit_code == 3 and f"chmod 600 {secret}" in loose.stderr


def test_adding_a_profile_again_keeps_what_no_option_sets(isolated_env: Path) -> None:
    """A new user's finding: re-adding `prod` to change its key dropped the `removal_grace`
    and `rate_limits` written by hand into the config file, silently."""
    import yaml

    _add_prod("--token-url", "https://auth.example.test/oauth/token")
    path = isolated_env / "config.yaml"
    document = yaml.safe_load(path.read_text())
    document["profiles"]["prod"].update({"removal_grace": 2, "rate_limits": "off"})
    path.write_text(yaml.safe_dump(document))
    again = run_cli(
        "profile", "add", "prod", "--base-url", "https://api.example.test/v0", "--api-key", "k2"
    )
    assert again.exit_code == 0, again.output
    assert "kept from before: token_url, rate_limits, removal_grace" in again.stdout
    profile = yaml.safe_load(path.read_text())["profiles"]["prod"]
    assert profile["api_key"] == "k2" and profile["removal_grace"] == 2
    assert profile["rate_limits"] == "off"
    assert profile["token_url"] == "https://auth.example.test/oauth/token"
