"""Where secrets come from: one precedence, files that must be private, keys that must be long."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest

from kprov.config import Settings, resolve_settings
from kprov.credentials import (
    API_SECRET,
    ID_KEY,
    Secret,
    find_api_secret,
    locate,
    new_id_key,
    require_keyring,
    resolve_api_secret,
    resolve_id_key,
    store_secret,
)
from kprov.errors import ConfigError
from tests.keyrings import MemoryKeyring

REAL = "real-secret-7f3a9c"
LONG_KEY = "0123456789abcdef0123456789abcdef"


def _settings(tmp_path: Path) -> Settings:
    return resolve_settings(
        env={
            "KPROV_CONFIG": str(tmp_path / "c.yaml"),
            "KPROV_BASE_URL": "https://x.test/v0",
            "KPROV_API_KEY": "k",
        }
    )


def _private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_precedence_env_then_file_then_systemd_credential_then_keyring(tmp_path: Path) -> None:
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    settings = _settings(tmp_path)
    store_secret(API_SECRET, "default", Secret("k"))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "kprov-api-secret").write_text("from-credential\n")
    env = {
        "KPROV_API_SECRET": "from-env",
        "KPROV_API_SECRET_FILE": str(_private(tmp_path / "s", "from-file\n")),
        "CREDENTIALS_DIRECTORY": str(creds),
    }
    seen = []
    for unset in ("KPROV_API_SECRET", "KPROV_API_SECRET_FILE", "CREDENTIALS_DIRECTORY", None):
        secret, source = find_api_secret(settings, env)
        seen.append((secret.reveal(), source.kind))
        if unset:
            del env[unset]
    assert seen == [
        ("from-env", "env"),
        ("from-file", "file"),
        ("from-credential", "systemd-credential"),
        ("k", "keyring"),
    ]


def test_builtin_sandbox_never_receives_a_real_secret(tmp_path: Path) -> None:
    settings = resolve_settings(
        profile_option="sandbox", env={"KPROV_CONFIG": str(tmp_path / "c.yaml")}
    )
    secret, source = find_api_secret(settings, {"KPROV_API_SECRET": REAL})
    assert secret.reveal() == "sandbox-secret" and source.kind == "built-in"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620])
def test_a_secret_file_others_can_reach_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int
) -> None:
    path = _private(tmp_path / "my secret", REAL + "\n", mode)
    with pytest.raises(ConfigError) as caught:
        resolve_api_secret(_settings(tmp_path), {"KPROV_API_SECRET_FILE": str(path)})
    assert caught.value.exit_code == 3
    assert f"Run: chmod 600 '{path}'" in str(caught.value)
    assert "KPROV_API_SECRET_FILE" in str(caught.value)
    assert REAL not in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_secret_file_is_read_without_its_trailing_newline(
    tmp_path: Path, mode: int
) -> None:
    settings = _settings(tmp_path)
    path = _private(tmp_path / "s", REAL + "\n", mode)
    assert resolve_api_secret(settings, {"KPROV_API_SECRET_FILE": str(path)}).reveal() == REAL
    path.chmod(0o600)
    _private(path, REAL + "\r\n")
    assert resolve_api_secret(settings, {"KPROV_API_SECRET_FILE": str(path)}).reveal() == REAL


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("\n", "the file is empty"),
        (REAL + "\n\n", "line break"),
        ("two\nlines\n", "line break"),
    ],
)
def test_empty_or_multiline_secret_files_are_refused(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = _private(tmp_path / "s", content)
    with pytest.raises(ConfigError, match=expected) as caught:
        resolve_api_secret(_settings(tmp_path), {"KPROV_API_SECRET_FILE": str(path)})
    assert REAL not in str(caught.value)


def test_a_missing_or_unreadable_secret_file_names_itself(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="no such file") as caught:
        resolve_api_secret(settings, {"KPROV_API_SECRET_FILE": str(missing)})
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError, match="is a directory"):
        resolve_api_secret(settings, {"KPROV_API_SECRET_FILE": str(tmp_path)})
    bad = tmp_path / "latin1"
    bad.write_bytes(b"caf\xe9")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="not UTF-8"):
        resolve_api_secret(settings, {"KPROV_API_SECRET_FILE": str(bad)})


def test_an_unusable_file_never_falls_through_to_the_keyring(tmp_path: Path) -> None:
    keyring.set_keyring(MemoryKeyring())
    store_secret(ID_KEY, "default", new_id_key())
    empty = _private(tmp_path / "k", "")
    with pytest.raises(ConfigError, match="empty"):
        resolve_id_key(_settings(tmp_path), {"KPROV_ID_KEY_FILE": str(empty)})


def test_missing_systemd_credential_is_named_in_the_final_message(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    with pytest.raises(ConfigError) as caught:
        resolve_api_secret(_settings(tmp_path), {"CREDENTIALS_DIRECTORY": str(creds)})
    text = str(caught.value)
    assert f"no {creds / 'kprov-api-secret'}" in text
    assert "LoadCredential=kprov-api-secret:FILE" in text
    assert "no usable keyring backend" in text
    assert caught.value.exit_code == 3


def test_systemd_credentials_are_not_judged_by_their_mode_bits(tmp_path: Path) -> None:
    """systemd restricts them to the unit's user; an ACL mask can show as group bits."""
    creds = tmp_path / "creds"
    creds.mkdir()
    _private(creds / "kprov-id-key", LONG_KEY + "\n", 0o440)
    lookup = locate(ID_KEY, "p", {"CREDENTIALS_DIRECTORY": str(creds)})
    assert lookup.secret is not None and lookup.secret.reveal() == LONG_KEY
    assert lookup.source is not None and lookup.source.kind == "systemd-credential"


def test_short_id_keys_are_refused_wherever_they_come_from(tmp_path: Path) -> None:
    short = "fifteen-bytes!!"
    assert len(short.encode()) == 15
    settings = _settings(tmp_path)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "kprov-id-key").write_text(short)
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    memory.set_password("kprov", "default:id-key", short)
    sources = [
        {"KPROV_ID_KEY": short},
        {"KPROV_ID_KEY_FILE": str(_private(tmp_path / "k", short + "\n"))},
        {"CREDENTIALS_DIRECTORY": str(creds)},
        {},  # the keyring
    ]
    for env in sources:
        with pytest.raises(ConfigError) as caught:
            resolve_id_key(settings, env)
        assert "15 bytes; at least 16" in str(caught.value)
        assert "kprov auth id-key generate" in str(caught.value)
        assert short not in str(caught.value)
    assert resolve_id_key(settings, {"KPROV_ID_KEY": short + "!"}).reveal() == short + "!"


def test_generated_id_keys_are_32_random_bytes() -> None:
    first, second = new_id_key().reveal(), new_id_key().reveal()
    assert len(bytes.fromhex(first)) == 32 and first != second


def test_secrets_hide_in_repr() -> None:
    secret = new_id_key()
    assert secret.reveal() not in repr(secret) and secret.reveal() not in f"{secret}"


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_file_given_through_a_symlink_is_judged_by_its_target(tmp_path: Path) -> None:
    target = _private(tmp_path / "target", REAL, 0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="chmod 600"):
        resolve_api_secret(_settings(tmp_path), {"KPROV_API_SECRET_FILE": str(link)})


def test_a_keyring_that_fails_is_named_not_a_crash(tmp_path: Path) -> None:
    from keyring.errors import KeyringLocked

    class LockedKeyring(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise KeyringLocked("locked")

    keyring.set_keyring(LockedKeyring())
    with pytest.raises(ConfigError) as caught:
        resolve_api_secret(_settings(tmp_path), {})
    assert "keyring: it did not answer (KeyringLocked)" in str(caught.value)


def test_without_a_keyring_each_secret_is_pointed_at_its_own_file_setting() -> None:
    """`auth login` on a headless box: the advice names the profile's --secret-file and the
    API secret's variable, never the id key's (and the id key's advice never the API's)."""
    with pytest.raises(ConfigError) as api:
        require_keyring(API_SECRET, "prod")
    hint = api.value.hint or ""
    assert "no usable keyring backend" in str(api.value)
    assert "kprov profile add prod" in hint and "--secret-file FILE" in hint
    assert "KPROV_API_SECRET_FILE" in hint and "LoadCredential=kprov-api-secret:FILE" in hint
    assert "KPROV_ID_KEY" not in hint
    with pytest.raises(ConfigError) as key:
        require_keyring(ID_KEY, "prod")
    hint = key.value.hint or ""
    assert "KPROV_ID_KEY_FILE" in hint and "LoadCredential=kprov-id-key:FILE" in hint
    assert "auth id-key generate --print" in hint
    assert "KPROV_API_SECRET" not in hint and "--secret-file" not in hint
