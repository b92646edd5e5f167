"""`oneroster_api:` manifest entries, the SIS secret's sources, and delta cursors on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import ConfigError
from kprov.rosters.api_source import OAUTH1, OAUTH2, V11, V12, ApiSource
from kprov.rosters.manifest import load_manifest
from kprov.sis.cursor import CURSOR_FILE, FileCursorStore, PendingCursors
from kprov.sis.secret import resolve_sis_secret


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "semester.yaml"
    path.write_text("defaults:\n  graph_id: g-1\n" + text)
    _manifest, problems, _refs = load_manifest(path)
    return [str(p).replace(str(path), "M") for p in problems]


def test_a_good_entry_becomes_a_source_with_defaults_from_its_url(tmp_path: Path) -> None:
    path = tmp_path / "semester.yaml"
    path.write_text(
        "defaults:\n  graph_id: g-1\noneroster_api:\n"
        "  - url: https://sis.example.org/campus/api/ims/oneroster/rostering/v1p2/\n"
        "    token_url: https://sis.example.org/campus/oauth2/token?appName=district\n"
        "    client_id: district-key\n    secret_file: sis.secret\n"
        "    schools: [hs-1, ms-2]\n    delta: true\n    page_size: 500\n"
    )
    _manifest, problems, refs = load_manifest(path)
    assert problems == []
    (source,) = [r.api for r in refs if r.api is not None]
    assert source == ApiSource(
        url="https://sis.example.org/campus/api/ims/oneroster/rostering/v1p2",
        version=V12,
        auth=OAUTH2,
        client_id="district-key",
        token_url="https://sis.example.org/campus/oauth2/token?appName=district",
        secret_file=str(tmp_path / "sis.secret"),
        schools=("hs-1", "ms-2"),
        delta=True,
        page_size=500,
        where=f"{path}:4",
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("    secret: hunter2\n", "M:6:5: oneroster_api: secret: never write the SIS secret"),
        ("    client_secret: x\n", "M:6:5: oneroster_api: client_secret: never write"),
        ("    auth: oauth1\n    token_url: https://sis.example.org/oauth/token\n",
         "M:7:16: oneroster_api: token_url is for OAuth 2"),
        ("    version: '1.2'\n", "M:6:14: oneroster_api: version 1.2 but the url is for 1.1"),
        ("    secret_env: 'hunter 2'\n", "M:6:17: oneroster_api: secret_env names an environment"),
        ("    secret_file: a\n    secret_env: B\n", "M:7:17: oneroster_api: give secret_file or"),
        ("    page_size: 0\n", "M:6:16: oneroster_api: page_size must be a whole number"),
        ("    delta: maybe\n", "M:6:12: oneroster_api: delta must be true or false"),
        ("    scope: roster\n", "M:6:12: oneroster_api: scope is for OAuth 2 only"),
        ("    sids: [1]\n", "M:6:5: unknown field 'sids' in a oneroster_api entry"),
    ],
)  # fmt: skip
def test_each_bad_key_is_named_at_its_line_and_column(
    tmp_path: Path, entry: str, expected: str
) -> None:
    text = (
        "oneroster_api:\n  - url: https://sis.example.org/ims/oneroster/v1p1\n"
        "    client_id: district-key\n" + entry
    )
    problems = _problems(tmp_path, text)
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://sis.example.org/ims/oneroster/v1p1", "uses plain http to sis.example.org"),
        ("https://sis.example.org/ims/oneroster/v1p1/users", "url must end at the version"),
        ("https://sis.example.org/ims/oneroster/rostering/v1p2", "needs token_url"),
    ],
)
def test_urls_that_would_leak_or_mislead_are_refused(
    tmp_path: Path, url: str, expected: str
) -> None:
    text = f"oneroster_api:\n  - url: {url}\n    client_id: k\n"
    assert any(expected in p for p in _problems(tmp_path, text))


def _source(**fields: Any) -> ApiSource:
    return ApiSource(url="https://sis.example.org/ims/oneroster/v1p1", version=V11,
                     auth=OAUTH1, client_id="k", where="M:3", **fields)  # fmt: skip


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "sis.secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="readable or writable by group or others"):
        resolve_sis_secret(_source(secret_file=str(secret)), {})
    secret.chmod(0o600)
    assert resolve_sis_secret(_source(secret_file=str(secret)), {}).reveal() == "s3cret"


def test_secret_env_names_the_variable_it_misses_and_never_shows_a_value() -> None:
    with pytest.raises(ConfigError, match="secret_env SIS_SECRET"):
        resolve_sis_secret(_source(secret_env="SIS_SECRET"), {})
    with pytest.raises(ConfigError, match="line break or control character") as caught:
        resolve_sis_secret(_source(secret_env="SIS_SECRET"), {"SIS_SECRET": "ab\ncd"})
    assert "ab" not in str(caught.value).replace("about", "")


def test_without_a_file_or_variable_the_keyring_is_asked_and_its_absence_explained() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_sis_secret(_source(), {})  # the tests' keyring has no backend
    text = str(caught.value)
    assert "no keyring backend" in text and "keyring set kprov oneroster:k@sis.example.org" in text


def test_cursors_are_saved_atomically_private_and_only_on_commit(tmp_path: Path) -> None:
    tmp_path = tmp_path / "state"
    tmp_path.mkdir()
    store = FileCursorStore(tmp_path)
    pending = PendingCursors()
    pending.hold("a", "2026-09-08T01:50:00Z")
    assert store.load("a") is None  # held, not saved
    pending.commit(store)
    assert store.load("a") == "2026-09-08T01:50:00Z"
    path = tmp_path / CURSOR_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [CURSOR_FILE]  # no temporary file left


@pytest.mark.parametrize("cursors", [{"a": "2026-09-08' OR 1=1"}, {"a": 5}, []])
def test_a_cursor_file_edited_into_something_else_is_refused(
    tmp_path: Path, cursors: object
) -> None:
    (tmp_path / CURSOR_FILE).write_text(json.dumps({"version": 1, "cursors": cursors}))
    with pytest.raises(ConfigError, match="Delete it"):
        FileCursorStore(tmp_path).load("a")
