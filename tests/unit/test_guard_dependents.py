"""What depends on a withheld item is withheld with it, and a saved plan carries what the
guards withheld exactly: the cases no other test breaks when they break."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import InputError
from kprov.provision.guards import (
    SOURCE,
    GuardSettings,
    GuardTrip,
    SourceVerdicts,
    finish_guards,
)
from kprov.provision.guards_grace import AbsenceUpdate
from kprov.provision.plan import Action, Brake, Item, Plan
from kprov.provision.saved_plan import _items_digest, load_plan, saved_document


def test_the_other_half_of_a_role_change_is_withheld_with_the_half_a_source_held() -> None:
    """A role change is both halves: its removal withheld by the source guard (its class's
    export is held) withholds the new role's registration too, counted in that trip."""
    leaving = Item(Action.UNREGISTER, "t1", "learner", "alg", "i-1", "a-1", "r-1",
                   role_change=True, guard=SOURCE, reason="withheld: held; role")  # fmt: skip
    arriving = Item(Action.REGISTER, "t1", "instructor", "alg", "i-1", "a-1", role_change=True)
    other = Item(Action.REGISTER, "s2", "learner", "geo", "i-2", "a-2")
    items = [leaving, arriving, other]
    trip = GuardTrip(SOURCE, "roster.csv: re-keyed?", 1, "roster.csv")
    verdict = finish_guards(
        items, GuardSettings(max_creations=None), mapped=0, brake=None, active=(),
        sources=SourceVerdicts(), trips=[trip], absences=AbsenceUpdate(), held_instances=(),
    )  # fmt: skip
    assert items[1].guard == SOURCE and "a role change is both halves" in items[1].reason
    assert items[2].guard == ""  # another class's registration goes
    assert verdict.trips[0].items == 2


def _write(path: Path, plan: Plan, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    document = saved_document(plan)
    if edit is not None:
        edit(document)
        document["items_digest"] = _items_digest(document["items"])  # a careful hand
    path.write_text(json.dumps(document), encoding="utf-8")


def test_a_saved_plan_whose_source_guard_withheld_removals_keeps_its_brake(
    tmp_path: Path,
) -> None:
    """The removal brake counts the removals the source guard had not withheld already:
    a plan with both is applied as saved, not refused as edited."""
    held = Item(Action.UNREGISTER, "s1", "learner", "alg", "i", "a1", "r-1", guard=SOURCE)
    braked = Item(Action.UNREGISTER, "s2", "learner", "geo", "j", "a2", "r-2", guard="removals")
    plan = Plan("sync", (held, braked), brake=Brake(1, 0, 5, "0"), fingerprint="sha256:0")
    path = tmp_path / "plan.json"
    _write(path, plan)
    assert [i.guard for i in load_plan(path).items] == [SOURCE, "removals"]


def test_a_saved_plan_naming_a_guard_kprov_does_not_have_is_refused(tmp_path: Path) -> None:
    item = Item(Action.CREATE_ACCOUNT, "s1", "learner", guard="creations")
    path = tmp_path / "plan.json"

    def edit(document: dict[str, Any]) -> None:
        document["items"][0]["guard"] = "nightly"

    _write(path, Plan("accounts import", (item,), fingerprint="sha256:0"), edit)
    with pytest.raises(InputError, match="unknown guard"):
        load_plan(path)


def test_a_class_whose_new_instructor_is_withheld_is_said_to_lose_its_last_one() -> None:
    """The old instructor's removal is sent; the new one's registration is withheld (their
    account past the creation limit): tonight the class keeps learners and no instructor."""
    from kprov.provision.class_shape import losing_last_instructor
    from kprov.state.registry import RegistrationRecord

    old = RegistrationRecord("a-old", "i-1", "instructor", "r-old", "t-old")
    learner = RegistrationRecord("a-s1", "i-1", "learner", "r-s1", "s1")
    items = [
        Item(Action.UNREGISTER, "t-old", "instructor", "alg", "i-1", "a-old", "r-old"),
        Item(Action.REGISTER, "t-new", "instructor", "alg", "i-1", guard="creations"),
    ]
    [warning] = losing_last_instructor(items, [old, learner])
    assert "loses its last instructor" in warning and "t-old" in warning
    sent = [items[0], items[1]._replace(guard="")]
    assert losing_last_instructor(sent, [old, learner]) == []
