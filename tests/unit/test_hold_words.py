"""How holds are worded: a hold is not a failure; exit 8 fits a hold; a withheld item says
"withheld" once; `holds show` says each guard's reason once, then the items; the approving
run is titled `holds approve`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kprov.cli.render import View, show_plan
from kprov.cli.render_holds import hold_lines
from kprov.errors import ExitCode, meaning
from kprov.provision.guards import CREATIONS, GuardTrip, GuardVerdict
from kprov.provision.holds import approval_plan
from kprov.provision.plan import Action, Item, Plan
from kprov.provision.run_summary import RunSummary, notification

WHY = "208 new accounts exceed the creation limit of 20 (10% of the 200 people in the mapping)"


def summary(code: int, **more: Any) -> RunSummary:
    return RunSummary(run_id="kprov-1", command="sync", profile="p", api_host="https://a",
                      os_user="ops", host="sis-01", started_at=1.0, ended_at=2.0,
                      exit_code=code, **more)  # fmt: skip


def test_a_hold_needs_approval_and_a_failure_is_a_failure() -> None:
    held = notification(summary(6, counts={"withheld": 416}, hold_id="hold-1"))
    assert held["text"].startswith("kprov sync NEEDS APPROVAL on sis-01")
    assert "FAILED" not in held["text"] and held["status"] == "needs_approval"
    failed = notification(summary(4, error="no answer"))
    assert failed["text"].startswith("kprov sync FAILED on sis-01") and failed["status"] == "failed"
    assert notification(summary(0))["status"] == "ok"


def test_exit_8_is_worded_for_saved_plans_and_holds() -> None:
    words = meaning(ExitCode.STALE_PLAN)
    assert "hold" in words and "saved plan" in words and "nothing was sent" in words


def withheld(ext: str, action: Action, why: str, reason: str) -> Item:
    return Item(action, ext, "learner", "alg", guard=CREATIONS,
                reason=f"withheld: {why}; {reason}")  # fmt: skip


def test_a_withheld_item_says_withheld_once(capsys: pytest.CaptureFixture[str]) -> None:
    items = (withheld("s1", Action.CREATE_ACCOUNT, WHY, "not in the mapping"),)
    plan = Plan("sync", items, guards=GuardVerdict(trips=(GuardTrip(CREATIONS, WHY, 1),)))
    show_plan(plan, View(), run_id="kprov-1", code=ExitCode.OK)
    [line] = [x for x in capsys.readouterr().out.splitlines() if "s1" in x]
    assert line == f"withheld: learner s1 in alg: {WHY}; not in the mapping"


def test_holds_show_says_each_reason_once_then_the_items() -> None:
    rows = [
        *(withheld(f"s{n}", Action.CREATE_ACCOUNT, WHY, "not in the mapping") for n in range(3)),
        *(withheld(f"s{n}", Action.REGISTER, "its account is withheld", "not registered")
          for n in range(3)),
    ]  # fmt: skip
    items = [{"action": i.action.value, "outcome": None, "person": i.external_id, "role": i.role,
              "instance": i.instance, "instance_name": "Algebra", "file": "alg.csv", "line": 2,
              "reason": i.reason, "detail": "", "guard": i.guard} for i in rows]  # fmt: skip
    hold = {"hold_id": "hold-1", "state": "open", "run_id": "kprov-1", "job": "sync s.yaml",
            "created_at": "2026-09-01T02:00:00Z", "os_user": "ops", "host": "h", "profile": "p",
            "base_url": "https://a", "items": 6,
            "trips": [{"guard": CREATIONS, "why": WHY, "items": 6, "source": ""}]}  # fmt: skip
    detail = {"hold": hold, "run": {"counts": {"withheld": 6}}, "previous_run": None,
              "sources": [], "items": items, "items_total": 6, "approve": "kprov holds approve",
              "dismiss": "kprov holds dismiss"}  # fmt: skip
    out = "\n".join(hold_lines(detail, 1000))
    assert out.count(WHY) == 2  # the trip, then the heading of its 3 items
    assert out.count("its account is withheld") == 1
    assert "creations, 3 item(s): its account is withheld" in out
    assert "create account: learner s0 in alg (Algebra) (alg.csv:2): not in the mapping" in out
    assert "withheld:" not in out


def test_the_approving_run_is_titled_holds_approve() -> None:
    row = {"action": "create_account", "person": "s1", "role": "learner", "instance": "alg",
           "reason": f"withheld: {WHY}; not in the mapping", "guard": CREATIONS, "spec": None,
           "file": "", "line": None, "instance_id": "", "account_id": "", "sis_id": "",
           "registration_id": "", "role_change": 0, "change": ""}  # fmt: skip
    hold = {"hold_id": "hold-1", "command": "sync", "profile": "p", "base_url": "u",
            "run_id": "kprov-1"}  # fmt: skip
    plan = approval_plan(hold, [row], SimpleNamespace(instance_index=None))  # type: ignore[arg-type]
    assert plan.command == "holds approve" and plan.items[0].reason == "not in the mapping"
