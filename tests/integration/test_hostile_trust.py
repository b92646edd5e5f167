"""Trust, round three, through the real CLI over HTTP with quota pacing on: secrets re-encoded
in echoes, escapes and formulas in server text, 429 for ever, ids named twice or upper-cased,
POSTs delivered twice. After each: the output, logs and reports hold no secret (in any
encoding) and no raw control character, CSV cells start no formula, and the local state holds
only what the server has."""

from __future__ import annotations

import base64
import csv
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.config import SANDBOX_API_SECRET
from kprov.sandbox.hostile import Hostility
from tests.conftest import SANDBOX_KEY, Sandbox, start_sandbox
from tests.end_state import recorded_ids, server_ids
from tests.helpers import Result, record_issued_tokens, run_cli
from tests.semesters import ONE_CLASS_MANIFEST

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


@pytest.fixture
def hostile(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox in the given modes (seed 7), KPROV_* pointing at it, pacing on; the tokens
    it issues in ``box.issued``."""
    box = start_sandbox(hostile=Hostility(request.param, seed=7))
    box.issued = record_issued_tokens(box)  # type: ignore[attr-defined]
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KPROV_RATE_LIMITS", "documented")
    monkeypatch.setenv("KPROV_REQUEST_DEADLINE", "2")
    yield box
    box.server.stop()


def leak_forms(value: str) -> list[str]:
    """A secret as an echo could show it: as is, in other cases, and re-encoded."""
    raw = value.encode()
    return [
        value,
        value.upper(),
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "".join(f"%{b:02x}" for b in raw),
        "".join(f"&#{ord(c)};" for c in value),
        "".join(f"&#x{ord(c):x};" for c in value),
    ]


def raw_controls(text: str) -> list[str]:
    return [repr(c) for c in text if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\r\t"]


def sync(tmp_path: Path, *options: str) -> tuple[Result, str]:
    """`kprov sync` of ONE_CLASS_MANIFEST twice, with a log, a CSV and an HTML report (the JSON
    report takes the same path as the HTML one); (the last result, all they wrote)."""
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    written = []
    for report in ("r.csv", "r.html"):
        result = run_cli(*options, "sync", str(manifest), "--log-file", str(tmp_path / "run.log"),
                         "--report", str(tmp_path / report))  # fmt: skip
        written.append(result.stdout + result.stderr)
    files = [tmp_path / n for n in ("run.log", "r.csv", "r.html")]
    written += [f.read_text(encoding="utf-8") for f in files if f.exists()]
    return result, "\n".join(written)


def secrets_of(box: Sandbox) -> list[str]:
    basic = base64.b64encode(f"{SANDBOX_KEY}:{SANDBOX_API_SECRET}".encode()).decode()
    return [SANDBOX_API_SECRET, basic, *box.issued]  # type: ignore[attr-defined]


@pytest.mark.parametrize("hostile", ["echo-token-encoded"], indirect=True)
@pytest.mark.parametrize("seed", range(6))
def test_a_token_endpoint_quoting_the_secret_re_encoded_never_prints_it(
    hostile: Sandbox, seed: int
) -> None:
    hostile.server.hostile._rng.seed(seed)  # each seed picks another encoding
    result = run_cli("--debug", "auth", "status")
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "bad client credentials" in output and "Traceback" not in output
    for form in leak_forms(SANDBOX_API_SECRET):
        assert form not in output, form
    assert not raw_controls(output)


@pytest.mark.parametrize("hostile", ["echo-token-split"], indirect=True)
def test_a_secret_quoted_split_wrapped_or_glued_is_never_printed(hostile: Sandbox) -> None:
    """Adversary, round three: the secret split across lines or by a zero-width space, its
    base64 wrapped at 8 columns or glued to a word, 0x hex, UTF-16 base64, \\x escapes."""
    from kprov.sandbox.hostile_wire import _split_forms

    result = run_cli("--debug", "auth", "status")
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "bad client credentials" in output
    half = len(SANDBOX_API_SECRET) // 2
    pieces = {SANDBOX_API_SECRET[:half], SANDBOX_API_SECRET[half:]}
    for form in [*_split_forms(SANDBOX_API_SECRET), *leak_forms(SANDBOX_API_SECRET)]:
        pieces |= {part for part in form.replace("\u200b", "\n").split("\n") if len(part) > 4}
    assert [p for p in pieces if p in output] == []


@pytest.mark.parametrize("hostile", ["echo-encoded"], indirect=True)
def test_debug_logs_of_answers_echoing_tokens_re_encoded_never_show_them(
    hostile: Sandbox, tmp_path: Path
) -> None:
    result, written = sync(tmp_path, "--debug")
    assert result.exit_code == 0, written
    assert '"trace": "seen ' in written  # the echoes were logged ...
    for secret in secrets_of(hostile):
        for form in leak_forms(secret):
            assert form not in written, form  # ... scrubbed in every encoding


@pytest.mark.parametrize("hostile", ["escape-text=0.5,escape-name"], indirect=True)
def test_escapes_and_formulas_in_server_text_reach_no_terminal_log_or_cell(
    hostile: Sandbox, tmp_path: Path
) -> None:
    result, written = sync(tmp_path)
    assert result.exit_code == 1, written
    assert "\\x1b]0;pwned\\x07" in written  # shown, escaped
    got = run_cli("instances", "get", "c1")
    listed = run_cli("instances", "list")
    written += got.stdout + got.stderr + listed.stdout
    assert "\\u202eevil" in got.stdout
    assert raw_controls(written) == []
    with (tmp_path / "r.csv").open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c.startswith("-") and c[1:2])]


@pytest.mark.parametrize("hostile", ["rate-forever"], indirect=True)
def test_429_for_ever_stops_the_run_releases_the_lock_and_names_the_host(
    hostile: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("KPROV_MAX_SERVER_WAIT", "0.6")  # the bound itself: test_wire_trust
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    log = tmp_path / "run.log"
    result = run_cli("sync", str(manifest), "--log-file", str(log))
    output = result.stdout + result.stderr
    assert result.exit_code == 4, output
    host = hostile.base_url.split("//")[1].split("/")[0]
    assert f"{host} " in output and ("refused every" in output or "wait" in output)
    assert json.loads(log.read_text().splitlines()[-1])["exit_code"] == 4  # recorded
    hostile.server.hostile.modes.clear()
    again = run_cli("sync", str(manifest))  # the lock was released; nothing was created
    assert again.exit_code == 0, again.stderr
    assert "duplicate" not in again.stderr
    assert len(hostile.store.instances) == 1


@pytest.mark.parametrize("hostile", ["dup-name=0.4", "upper-id"], indirect=True)
def test_ids_named_twice_or_upper_cased_leave_only_ids_the_server_has(
    hostile: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    first = run_cli("sync", str(manifest))
    assert first.exit_code in (0, 1), first.stderr
    assert recorded_ids(state_dir) and recorded_ids(state_dir) <= server_ids(hostile)
    for name in ("mapping.csv", "instances.csv", "registrations.csv"):
        path = state_dir / name
        stored = re.findall(UUID, path.read_text(encoding="utf-8") if path.exists() else "")
        assert all(i == i.lower() for i in stored), name  # as the server issued them
    hostile.server.hostile.modes.clear()  # a case-sensitive, honest server from now on
    again = run_cli("sync", str(manifest))
    assert again.exit_code == 0, again.stderr
    assert recorded_ids(state_dir) <= server_ids(hostile)
    assert {e for e, _i, _t in hostile.enrolments()} == {"t-1", "s-1", "s-2", "s-3"}


@pytest.mark.parametrize("hostile", ["replay"], indirect=True)
def test_replayed_posts_are_described_truthfully_and_resolved_by_the_rerun(
    hostile: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    first = run_cli("sync", str(manifest))
    assert first.exit_code == 1, first.stderr
    assert "never asked for it" not in first.stderr
    assert "a proxy that delivers a POST twice" in first.stderr
    assert recorded_ids(state_dir) <= server_ids(hostile)
    second = run_cli("sync", str(manifest))
    assert second.exit_code == 0, second.stderr
    unresolved = run_cli("registrations", "unresolved", "--json")
    assert len(json.loads(unresolved.stdout)["unresolved"]) == 4
