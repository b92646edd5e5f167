"""A plan saved to apply later is judged with the run ledger's history, or not saved: `kprov
apply` sends it without judging the sources again, so a plan made while the ledger could not
be read (no source guard, no grace counts) must not become a file someone applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import StorageError
from kprov.state import ledger_guards
from tests.conftest import Sandbox
from tests.helpers import run_cli
from tests.semesters import Semester


def test_a_plan_is_not_saved_when_the_ledgers_history_cannot_be_read(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    manifest = str(semester.write())

    def unreadable(*_args: object, **_kwargs: object) -> None:
        raise StorageError("the run ledger cannot be read (test)", hint="Check the disk.")

    monkeypatch.setattr(ledger_guards, "reference_rows", unreadable)
    shown = run_cli("sync", manifest, "--plan")
    assert shown.exit_code == 0 and "this plan ignores it" in shown.stderr  # only looked at
    saved = tmp_path / "tonight.json"
    refused = run_cli("sync", manifest, "--plan", "--out", str(saved))
    assert refused.exit_code == 9, refused.output
    assert "cannot be read" in refused.stderr and not saved.exists()
    assert sandbox_env.write_requests() == 0
