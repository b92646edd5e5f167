"""Adversary (issue 20): a plan saved with `--plan --out` while a guard holds part of it is
applied as the night would have been: the rest applied, the held part saved as a hold (exit
6). It was refused as "the file was edited": the saved removal limit counts the removals the
source guard had not withheld, the check counted them all.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Sandbox
from tests.helpers import run_cli
from tests.semesters import Semester


def test_a_saved_plan_with_a_held_source_applies_and_makes_its_hold(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    ids = [f"st{n:04d}x" for n in range(22)]
    semester.set_class("alg", ["t-1"], ids)
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0
    writes = sandbox_env.write_requests()

    semester.set_class("alg", ["t-1"], [i.upper() for i in ids])  # re-keyed: held
    semester.write()
    saved = tmp_path / "tonight.json"
    assert run_cli("sync", manifest, "--prune", "--plan", "--out", str(saved)).exit_code == 0
    applied = run_cli("apply", str(saved), "--json")
    assert applied.exit_code == 6, applied.output
    night = json.loads(applied.stdout)
    assert night["counts"]["withheld"] == 66 and night["hold_id"]
    assert sandbox_env.write_requests() == writes  # nothing of the held source was sent


def test_a_saved_plan_waiting_out_a_grace_applies(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], [f"a-{n}" for n in range(22)])
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0
    semester.set_class("alg", ["t-1"], [f"a-{n}" for n in range(21)])  # a-21 missing once
    semester.write()
    saved = tmp_path / "tonight.json"
    made = run_cli("sync", manifest, "--prune", "--grace", "2", "--plan", "--out", str(saved))
    assert made.exit_code == 0, made.output
    assert run_cli("apply", str(saved)).exit_code == 0
    assert ("a-21", "Class alg", "learner") in sandbox_env.enrolments()
