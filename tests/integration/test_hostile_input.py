"""Hand-made hostile inputs, run as users run kprov (the real CLI, the sandbox over HTTP):
each is refused before anything is sent, and the server is left exactly as it was."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.conftest import Sandbox
from tests.helpers import run_cli


def _manifest(folder: Path, people_blocks: list[str]) -> Path:
    lines = ["defaults: {graph_id: gref-test}", "instances:", "  - key: alg", "    name: Algebra"]
    for block in people_blocks:
        lines += ["    people:", "      - instructors: [t-1]", f"      - roster: {block}"]
    path = folder / "semester.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_class_given_people_twice_removes_nobody_even_with_prune_yes(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "first.csv").write_text("external_user_id\ns-1\ns-2\ns-3\n")
    (tmp_path / "second.csv").write_text("external_user_id\ns-9\n")
    first = run_cli("sync", str(_manifest(tmp_path, ["first.csv"])))
    assert first.exit_code == 0, first.output
    before: Any = sandbox_env.enrolments()
    assert len(before) == 4
    writes = sandbox_env.write_requests()

    # YAML's last-wins would read this as "the class holds s-9 only" and prune s-1..s-3.
    doubled = _manifest(tmp_path, ["first.csv", "second.csv"])
    result = run_cli("sync", str(doubled), "--prune", "--yes", "--max-removals", "100%")
    assert result.exit_code == 2, result.output
    assert f"{doubled}:8:5: 'people' is given twice (first at line 5)" in result.stderr
    assert sandbox_env.write_requests() == writes  # nothing sent
    assert sandbox_env.enrolments() == before  # nobody removed


def test_command_line_keys_names_ids_and_refs_are_refused_before_anything_is_sent(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id\ns-1\n")
    create = run_cli(
        "instances", "create", "--graph-id", "@SUM(1+1)", "--name", "Alg\x1b]0;owned\x07\u202e",
        "--key", "=cmd|' /C calc'!A0",
    )  # fmt: skip
    assert create.exit_code == 2
    for problem in ("--key: instance key", "--name: name contains control", "--graph-id: graph"):
        assert problem in create.stderr
    refused = [
        ("accounts", "create", '=HYPERLINK("http://x")'),
        ("register", "--instance", "k", "--learner", "+SUM(1+1)"),
        ("register", "--instance", "-2+3", str(roster)),
        ("unregister", "--instance", "\uff20k", "s-1", "--yes"),
        ("profile", "add", "p", "--base-url", "https://a.example.org/v0", "--api-key", "k",
         "--admin-external-id", "=1+1"),
    ]  # fmt: skip
    for args in refused:
        result = run_cli(*args)
        assert result.exit_code == 2, (args, result.output)
    for output in (create.stderr, result.stderr):
        assert "\x1b" not in output and "\u202e" not in output
    assert sandbox_env.requests() == {}  # not even a token
    assert not Path(os.environ["KPROV_CONFIG"]).exists()  # the profile was not saved
