"""Skipped rows are explained where the operator looks: `-v` lists each (file:line: why),
the summary points at how to see them (once), and cron, when all is well, still gets
nothing at all."""

from __future__ import annotations

import pytest

from kprov.cli.render import View, show_plan, show_run
from kprov.errors import ExitCode
from kprov.provision.plan import Plan
from kprov.provision.result import RunResult
from kprov.rosters.model import Origin, Skipped

SKIPPED = (
    Skipped(Origin("users.csv", 7), "s-7", "role 'guardian' is not provisioned"),
    Skipped(Origin("users.csv", 9), "s-9", "the user is disabled in the SIS export"),
)
PLAN = Plan("sync", (), skipped=SKIPPED)
HINT = "(--report FILE lists them; -v shows them)"


def test_verbose_lists_each_skipped_row_with_where_and_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_run(RunResult(PLAN, "kprov-1"), View(verbose=True), code=ExitCode.OK)
    out = capsys.readouterr().out
    assert "skipped: s-7 (users.csv:7): role 'guardian' is not provisioned" in out
    assert "skipped: s-9 (users.csv:9): the user is disabled in the SIS export" in out
    assert HINT not in out
    show_plan(PLAN, View(verbose=True), run_id="kprov-1", code=ExitCode.OK)
    assert "skipped: s-7 (users.csv:7)" in capsys.readouterr().out


def test_the_summary_hints_once_and_cron_still_gets_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_run(RunResult(PLAN, "kprov-1"), View(), code=ExitCode.OK)
    out = capsys.readouterr().out
    assert out.count(HINT) == 1 and "skipped rows 2" in out and "users.csv" not in out
    show_plan(PLAN, View(), run_id="kprov-1", code=ExitCode.OK)
    assert capsys.readouterr().out.count(HINT) == 1
    show_run(RunResult(PLAN, "kprov-1"), View(cron_quiet=True), code=ExitCode.OK)
    assert capsys.readouterr() == ("", "")
