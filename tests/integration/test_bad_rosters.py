"""The malformed-roster corpus: each file exits 2, names file:line, and sends nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox, start_sandbox
from tests.helpers import run_cli

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad_rosters"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    box = start_sandbox()
    yield box
    box.server.stop()


@pytest.fixture
def sandbox_env(shared_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """One sandbox for the module (its shutdown is slow): no test here may send anything, so
    each starts, and must end, with the sandbox having seen no request at all."""
    for key, value in shared_sandbox.env().items():
        monkeypatch.setenv(key, value)
    assert shared_sandbox.requests() == {}
    return shared_sandbox


def test_the_corpus_is_large_enough() -> None:
    assert len(EXPECTED) >= 25
    assert {p.name for p in CORPUS.iterdir()} >= set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_roster_is_refused_precisely(sandbox_env: Sandbox, name: str) -> None:
    path = CORPUS / name
    expected = EXPECTED[name]
    result = run_cli("accounts", "import", str(path))
    assert result.exit_code == 2, result.output
    source = f"{path}!{expected['member']}" if expected.get("member") else str(path)
    where = f"{source}:{expected['line']}:" if expected["line"] else source

    problem_lines = [line for line in result.stderr.splitlines() if line.strip().startswith(where)]
    assert any(str(expected["contains"]) in line for line in problem_lines), result.stderr
    assert "nothing was sent" in result.stderr
    assert sandbox_env.requests() == {}


@pytest.mark.parametrize("command", [("register", "--instance", "k"), ("sync",)])
def test_other_commands_refuse_the_same_input(
    sandbox_env: Sandbox, tmp_path: Path, command: tuple[str, ...]
) -> None:
    bad = CORPUS / "email_id.csv"
    if command[0] == "sync":
        manifest = tmp_path / "semester.yaml"
        manifest.write_text(
            f"defaults: {{graph_id: g}}\ninstances:\n  - key: k\n    name: K\n"
            f"    people:\n      - roster: {bad}\n"
        )
        result = run_cli("sync", str(manifest))
    else:
        result = run_cli(*command, str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3:1: id 'maria.garcia@district.k12.us' looks like an email" in result.stderr
    assert sandbox_env.requests() == {}


def test_a_100_mb_line_is_refused_without_being_held_in_memory(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"external_user_id\nstu-1\n")
        chunk = b"x" * (1 << 20)
        for _ in range(100):
            handle.write(chunk)
        handle.write(b"\nstu-2\n")
    result = run_cli("accounts", "import", str(path))
    assert result.exit_code == 2
    assert f"{path}:3: line is longer than 1024 KiB" in result.stderr
    assert sandbox_env.requests() == {}


def test_an_oversized_yaml_roster_is_refused(sandbox_env: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("users:\n" + "  - stu-000000000001\n" * 1_200_000)
    result = run_cli("accounts", "import", str(path))
    assert result.exit_code == 2 and "use CSV for large rosters" in result.stderr
    assert sandbox_env.requests() == {}


def test_bad_input_is_reported_as_such_even_before_any_configuration(tmp_path: Path) -> None:
    # no KPROV_BASE_URL, no profile: the roster's problem still comes first, as exit 2
    result = run_cli("accounts", "import", str(CORPUS / "email_id.csv"))
    assert result.exit_code == 2
    assert "looks like an email address" in result.stderr


def _refused(sandbox: Sandbox, *args: str, input: str | None = None) -> str:
    result = run_cli("accounts", "import", *args, input=input)
    assert result.exit_code == 2, result.output
    assert "nothing was sent" in result.stderr or "error" in result.stderr
    assert sandbox.requests() == {}
    return str(result.stderr)


def test_a_fifo_a_device_and_a_directory_are_refused_promptly(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "roster.csv"
    os.mkfifo(fifo)  # no writer: opening it for reading the usual way would hang for ever
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    opened: dict[str, int] = {}
    real_open = os.open

    def opening(path: str | Path, flags: int, *args: int, **kwargs: int) -> int:
        opened[str(path)] = flags
        assert str(path) != str(fifo) or flags & os.O_NONBLOCK, "this open would hang for ever"
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)
    stderr = _refused(sandbox_env, str(fifo), "/dev/zero", str(folder))
    # promptly: each was opened without blocking (a fifo with no writer would hang for ever)
    # and refused by its type, never read (the words below are not a reader's complaint)
    assert all(opened[str(p)] & os.O_NONBLOCK for p in (fifo, "/dev/zero"))
    assert f"{fifo}: is a named pipe (fifo), not a roster file" in stderr
    assert "/dev/zero: is a device, not a roster file" in stderr
    assert f"{folder}: is a directory, not a roster file" in stderr


def test_a_fifo_named_as_a_bundle_member_is_refused(sandbox_env: Sandbox, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.csv").write_text("propertyName,value\nfile.users,bulk\n")
    os.mkfifo(bundle / "users.csv")
    stderr = _refused(sandbox_env, str(bundle))
    assert f"{bundle}!users.csv: is a named pipe (fifo)" in stderr


def test_a_small_zip_that_inflates_without_bound_is_refused_quickly(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("manifest.csv", "propertyName,value\nfile.users,bulk\n")
        with archive.open("users.csv", "w", force_zip64=True) as member:
            member.write(b"sourcedId,role\n")
            zeros = b"0" * (1 << 20)
            for _ in range(48):  # 48 MiB of one byte: ~50 KB packed, a ratio near 1000
                member.write(zeros)
    assert bomb.stat().st_size < 1 << 20
    inflated: list[str] = []
    real_open = zipfile.ZipFile.open

    def opening(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        inflated.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", opening)
    stderr = _refused(sandbox_env, str(bomb))
    assert f"{bomb}!users.csv: refusing to inflate" in stderr and "zip bomb" in stderr
    assert "users.csv" not in inflated  # judged by its sizes alone: not one byte inflated


def test_a_member_larger_than_it_declares_is_reported_as_damaged(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    bundle = tmp_path / "lying.zip"
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("users.csv", "sourcedId,role\n" + "u-1,student\n" * 2000)
    data = bytearray(bundle.read_bytes())
    real = (len("sourcedId,role\n") + 2000 * len("u-1,student\n")).to_bytes(4, "little")
    for at in range(len(data) - 4):  # declare 100 bytes where there are ~26 KB
        if data[at : at + 4] == real:
            data[at : at + 4] = (100).to_bytes(4, "little")
    bundle.write_bytes(bytes(data))
    stderr = _refused(sandbox_env, str(bundle))
    assert f"{bundle}!users.csv" in stderr and "damaged" in stderr


def test_standard_input_is_read_and_refused_like_a_file(sandbox_env: Sandbox) -> None:
    stderr = _refused(sandbox_env, "-", input="external_user_id\nstu-1\n#REF!\n")
    assert "<stdin>:3:1: id '#REF!' is a spreadsheet error or placeholder" in stderr


def test_duplicates_on_standard_input_name_both_lines(sandbox_env: Sandbox) -> None:
    stderr = _refused(sandbox_env, "-", input="external_user_id\nstu-1\nstu-2\nstu-1\n")
    assert "<stdin>:4: id 'stu-1' appears twice: first at <stdin>:2" in stderr


def test_yaml_on_standard_input_with_format_yaml(sandbox_env: Sandbox) -> None:
    stderr = _refused(sandbox_env, "-", "--format", "yaml", input="users:\n  - N/A\n")
    assert "<stdin>:2:5: id 'N/A' is a spreadsheet error" in stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--encoding", "klingon"), "--encoding 'klingon' is not a known encoding"),
        (("--delimiter", "::"), "--delimiter '::': give one character"),
        (("--format", "xlsx"), "--format 'xlsx': use one of auto, csv, yaml"),
        (("--encoding", "zlib"), "--encoding 'zlib' is not a text encoding"),
    ],
)
def test_bad_reading_options_are_bad_input(
    sandbox_env: Sandbox, option: tuple[str, str], message: str
) -> None:
    stderr = _refused(sandbox_env, str(CORPUS / "email_id.csv"), *option)
    assert message in stderr


def test_a_file_invalid_in_the_chosen_encoding_names_line_byte_and_option(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("external_user_id;nom\nstu-1;Zoë\nstu-2;Jürgen\n".encode("cp1252"))
    stderr = _refused(sandbox_env, str(path), "--encoding", "utf-8")
    assert f"{path}:2:9: byte 0xEB is not valid UTF-8" in stderr
    assert "pass --encoding cp1252" in stderr


# ------------------------------------------------- hostile YAML and endless standard input


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (("sync",), f"a: {_deep(500)}\n"),
        (("accounts", "import"), f"users:\n  - {_deep(500)}\n"),
    ],
)
def test_deeply_nested_yaml_is_bad_input_not_a_traceback(
    sandbox_env: Sandbox, tmp_path: Path, command: tuple[str, ...], text: str
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    result = run_cli("--json", *command, str(path), "--plan")
    assert result.exit_code == 2, result.output
    envelope = json.loads(result.stdout)
    assert envelope["error"]["type"] == "InputError"
    [problem] = envelope["error"]["problems"]
    assert problem.startswith(f"{path}:") and "nested deeper than 64 levels" in problem
    assert sandbox_env.requests() == {}


def test_a_deeply_nested_config_file_is_a_config_error(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"profiles: {_deep(500)}\n")
    result = run_cli("--config", str(config), "--json", "profile", "list")
    assert result.exit_code == 3, result.output
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "ConfigError"
    assert error["message"].startswith(f"cannot read config file {config}:1:")
    assert "nested deeper than 64 levels" in error["message"]


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("/dev/zero", "<stdin>:1: line is longer than 1024 KiB"),
        ("/dev/urandom", "line contains a NUL byte"),
    ],
)
def test_an_endless_device_on_standard_input_is_refused_at_once(
    sandbox_env: Sandbox, device: str, message: str
) -> None:
    command = [sys.executable, "-m", "kprov", "accounts", "import", "-", "--dry-run"]
    # the timeout is the bound: the bytes read before the refusal are counted in
    # tests/unit/test_rosters_stdin.py (a line's worth, not the 1 GiB cap)
    with open(device, "rb") as endless:
        done = subprocess.run(command, stdin=endless, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "nothing was sent" in done.stderr
    assert sandbox_env.requests() == {}


def _manifest(tmp_path: Path, roster: Path, entry: str = "", defaults: str = "") -> Path:
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(
        f"defaults:\n  graph_id: g\n{defaults}"
        f"instances:\n  - key: k\n    name: K\n    people:\n      - roster: {roster.name}\n"
        f"{entry}"
    )
    return manifest


def _manifest_fix(stderr: str) -> str:
    found = re.search(r"set `([^`]+)`", stderr)
    assert found, stderr
    return found.group(1)


def test_id_column_and_encoding_hints_work_when_followed_in_a_manifest(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = tmp_path / "export.csv"
    roster.write_bytes("StudentNumber;nom\nstu-1;Zoë\nstu-2;Jürgen\n".encode("cp1252"))
    first = run_cli("sync", str(_manifest(tmp_path, roster)), "--plan")
    assert first.exit_code == 2
    assert "set `id_column: NAME` on that roster's entry or in `defaults:`" in first.stderr
    assert "--id-column" not in first.stderr  # `sync` has no such option
    defaults = "  " + _manifest_fix(first.stderr).replace("NAME", "StudentNumber") + "\n"
    second = run_cli("sync", str(_manifest(tmp_path, roster, "", defaults)), "--plan")
    assert second.exit_code == 2
    assert "set `encoding: cp1252` on that roster's entry" in second.stderr
    assert "--encoding" not in second.stderr
    entry = f"        {_manifest_fix(second.stderr)}\n"
    third = run_cli("sync", str(_manifest(tmp_path, roster, entry, defaults)), "--plan")
    assert third.exit_code == 0, third.output
    assert sandbox_env.requests() == {}


def test_the_delimiter_hint_is_a_manifest_value_too(sandbox_env: Sandbox, tmp_path: Path) -> None:
    roster = tmp_path / "export.csv"
    roster.write_text("external_user_id\nstu-1;learner\n")
    first = run_cli("sync", str(_manifest(tmp_path, roster)), "--plan")
    assert "set `delimiter: ';'` on that roster's entry" in first.stderr
    assert "--delimiter" not in first.stderr
    entry = f"        {_manifest_fix(first.stderr)}\n"
    second = run_cli("sync", str(_manifest(tmp_path, roster, entry)), "--plan")
    # the manifest took the value: the file is now read with ';' (and is ragged)
    assert "row has 2 fields but the header has 1" in second.stderr, second.stderr
    assert "semicolon" in second.stderr
    assert sandbox_env.requests() == {}


def test_an_unknown_roster_type_in_a_manifest_says_to_rename_it(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = tmp_path / "export.dat"
    roster.write_text("external_user_id\nstu-1\n")
    result = run_cli("sync", str(_manifest(tmp_path, roster)), "--plan")
    assert result.exit_code == 2
    assert "pass --format csv (in a manifest: rename the file to .csv)" in result.stderr


def test_a_yaml_roster_with_a_mistyped_key_is_refused(sandbox_env: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "users: [{external_user_id: s-y1, roll: instructor}, "
        "{external_user_id: s-y4, rolee: teacher}]\n"
    )
    stderr = _refused(sandbox_env, str(path), "--dry-run")
    assert f"{path}:1:34: unknown key 'roll' in a user; the keys are: external_user_id" in stderr
    assert f"{path}:1:78: unknown key 'rolee' in a user" in stderr
