"""The malformed-roster corpus: each file exits 2, names file:line, and sends nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Sandbox
from tests.helpers import run_cli

CORPUS = Path(__file__).resolve().parent.parent / "data" / "bad_rosters"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())


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
    assert f"{bad}:3: id 'maria.garcia@district.k12.us' looks like an email" in result.stderr
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
