"""Profiles, environment overrides, credentials and exit codes."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest

from kprov.config import ConfigFile, Origin, Profile, resolve_settings
from kprov.credentials import (
    Secret,
    delete_api_secret,
    resolve_api_secret,
    resolve_id_key,
    store_api_secret,
)
from kprov.errors import ConfigError, ExitCode
from tests.keyrings import MemoryKeyring


def test_exit_codes_are_stable() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 130, 141]
    assert ExitCode.LOCKED == 5 and ExitCode.SAFETY_LIMIT == 6
    assert ExitCode.NOT_FOUND == 7 and ExitCode.STALE_PLAN == 8 and ExitCode.STORAGE == 9


def test_environment_alone_is_enough_for_automation() -> None:
    env = {
        "KPROV_BASE_URL": "https://api.example.test/v0/",
        "KPROV_API_KEY": "k",
        "KPROV_STATE_DIR": "/tmp/s",
        "KPROV_CONFIG": "/nonexistent/c.yaml",
    }
    settings = resolve_settings(env=env)
    assert settings.profile.base_url == "https://api.example.test/v0"
    assert settings.token_url == "https://api.example.test/v0/oauth/token"
    assert settings.mapping_path == Path("/tmp/s/mapping.csv")


def test_env_overrides_the_profile_and_profile_selects_the_state_dir(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "c.yaml")
    config.add(
        Profile(
            "prod",
            "https://api.example.test/v0",
            "k1",
            token_url="https://auth.example.test/oauth/token",
        )
    )
    config.save()
    env = {"KPROV_CONFIG": str(tmp_path / "c.yaml"), "KPROV_API_KEY": "k2"}
    settings = resolve_settings(env=env)
    assert settings.profile.name == "prod"
    assert settings.profile.api_key == "k2"
    assert settings.token_url == "https://auth.example.test/oauth/token"
    assert settings.state_dir.name == "prod"


def test_config_file_is_private(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "dir" / "c.yaml")
    config.add(Profile("p", "https://x.test/v0", "k"))
    config.save()
    assert (config.path.stat().st_mode & 0o777) == 0o600


def test_missing_profile_explains_both_fixes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(env={"KPROV_CONFIG": str(tmp_path / "none.yaml")})
    text = str(caught.value)
    assert "kprov profile add" in text and "KPROV_BASE_URL" in text
    assert caught.value.exit_code == 3


def test_plain_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plain http"):
        resolve_settings(
            env={
                "KPROV_CONFIG": str(tmp_path / "c.yaml"),
                "KPROV_BASE_URL": "http://api.example.test/v0",
                "KPROV_API_KEY": "k",
            }
        )


def test_builtin_sandbox_profile_needs_no_setup(tmp_path: Path) -> None:
    settings = resolve_settings(
        profile_option="sandbox", env={"KPROV_CONFIG": str(tmp_path / "c.yaml")}
    )
    assert settings.is_builtin_sandbox
    assert settings.profile.base_url.startswith("http://127.0.0.1:")
    assert resolve_api_secret(settings, env={}).reveal() == "sandbox-secret"


def _settings(tmp_path: Path):
    return resolve_settings(
        env={
            "KPROV_CONFIG": str(tmp_path / "c.yaml"),
            "KPROV_BASE_URL": "https://x.test/v0",
            "KPROV_API_KEY": "k",
        }
    )


def test_secret_from_env_wins_over_keyring(tmp_path: Path) -> None:
    secret = resolve_api_secret(_settings(tmp_path), env={"KPROV_API_SECRET": "from-env"})
    assert secret.reveal() == "from-env"


def test_no_keyring_backend_gives_one_clear_message_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_api_secret(_settings(tmp_path), env={})
    assert "no usable keyring backend" in str(caught.value)
    assert "KPROV_API_SECRET" in str(caught.value)


def test_keyring_store_resolve_and_delete(tmp_path: Path) -> None:
    keyring.set_keyring(MemoryKeyring())
    settings = _settings(tmp_path)
    with pytest.raises(ConfigError, match="auth login"):
        resolve_api_secret(settings, env={})
    store_api_secret("default", Secret("kept"))
    assert resolve_api_secret(settings, env={}).reveal() == "kept"
    assert delete_api_secret("default") is True
    assert delete_api_secret("default") is False


def test_id_key_comes_from_env_or_points_at_the_generate_command(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = "k" * 16
    assert resolve_id_key(settings, env={"KPROV_ID_KEY": key}).reveal() == key
    keyring.set_keyring(MemoryKeyring())
    with pytest.raises(ConfigError) as caught:
        resolve_id_key(settings, env={})
    assert "kprov --profile default auth id-key generate" in str(caught.value)
    assert "KPROV_ID_KEY_FILE" in str(caught.value)


def test_config_file_rate_limits_can_be_off_or_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "profiles:\n"
        "  local: {base_url: 'http://127.0.0.1:9/v0', api_key: k, rate_limits: off}\n"
        "  big: {base_url: 'https://x.test/v0', api_key: k, rate_limits: {'POST /batch': 300}}\n"
        "  bad: {base_url: 'https://x.test/v0', api_key: k}\n"
    )
    config = ConfigFile(path)
    assert config.profiles["local"].rate_limits_off
    assert dict(config.profiles["big"].rate_limits) == {"POST /batch": 300}
    config.save()  # round trip keeps both forms
    again = ConfigFile(path)
    assert again.profiles["local"].rate_limits_off
    assert dict(again.profiles["big"].rate_limits) == {"POST /batch": 300}
    path.write_text(
        "profiles:\n  p: {base_url: 'https://x.test/v0', api_key: k, "
        "rate_limits: {'POST /batch': fast}}\n"
    )
    with pytest.raises(ConfigError, match="rate_limits"):
        ConfigFile(path)


def test_every_setting_remembers_its_origin(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    config = ConfigFile(path)
    config.add(Profile("prod", "https://api.example.test/v0", "k1"))
    config.save()
    settings = resolve_settings(env={"KPROV_CONFIG": str(path), "KPROV_API_KEY": "k2"})
    origins = settings.origins
    assert (origins["config_file"].kind, origins["config_file"].location) == (
        "env",
        "KPROV_CONFIG",
    )
    assert origins["profile"].kind == "config-file"  # the file's current_profile
    assert origins["base_url"] == Origin("config-file", f"{path}, profile prod")
    assert origins["api_key"] == Origin("env", "KPROV_API_KEY")
    assert origins["token_url"].kind == "derived"
    assert origins["state_dir"].kind == "default"
    assert origins["mapping"].kind == "derived"

    flagged = resolve_settings(
        profile_option="prod",
        mapping_option=str(tmp_path / "m.csv"),
        env={"KPROV_CONFIG": str(path), "KPROV_STATE_DIR": str(tmp_path / "s")},
    )
    assert flagged.origins["profile"] == Origin("flag", "--profile")
    assert flagged.origins["mapping"] == Origin("flag", "--mapping")
    assert flagged.origins["state_dir"] == Origin("env", "KPROV_STATE_DIR")


def test_builtin_sandbox_settings_say_they_are_built_in(tmp_path: Path) -> None:
    settings = resolve_settings(
        profile_option="sandbox", env={"KPROV_CONFIG": str(tmp_path / "c.yaml")}
    )
    assert settings.origins["base_url"] == Origin("built-in", "sandbox profile")
    assert settings.origins["profile"] == Origin("flag", "--profile")


def test_removing_the_current_profile_leaves_none_current(tmp_path: Path) -> None:
    config = ConfigFile(tmp_path / "c.yaml")
    config.add(Profile("a", "https://x.test/v0", "k"))
    config.add(Profile("b", "https://x.test/v0", "k"))
    config.remove("a")
    config.save()
    again = ConfigFile(tmp_path / "c.yaml")
    assert list(again.profiles) == ["b"] and again.current_profile is None


def test_a_mistyped_profile_is_called_unknown_and_the_known_ones_are_named(
    tmp_path: Path,
) -> None:
    config = ConfigFile(tmp_path / "c.yaml")
    config.add(Profile("prod", "https://api.example.test/v0", "k1"))
    config.add(Profile("lab", "https://lab.example.test/v0", "k2"))
    config.save()
    with pytest.raises(ConfigError) as caught:
        resolve_settings(profile_option="prdo", env={"KPROV_CONFIG": str(config.path)})
    message = caught.value.args[0]
    assert f"{config.path} has no profile 'prdo' (it has: lab, prod)" in message
    assert "base URL (KPROV_BASE_URL) and API key (KPROV_API_KEY)" in message
    with pytest.raises(ConfigError) as first_time:
        resolve_settings(env={"KPROV_CONFIG": str(tmp_path / "none.yaml")})
    assert "no profile 'default': there is no config file" in first_time.value.args[0]
    with pytest.raises(ConfigError) as half:
        resolve_settings(
            profile_option="prdo",
            env={"KPROV_CONFIG": str(config.path), "KPROV_BASE_URL": "https://x.test/v0"},
        )
    assert half.value.args[0].endswith("the environment gives no API key (KPROV_API_KEY)")
