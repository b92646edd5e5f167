"""A class that cannot work is caught at plan time: learners without an instructor, or more
registrations than the API's 500; each of its lines a `cannot`, nothing sent for it, the rest
of the plan unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.cli.render import View, show_plan
from kprov.errors import ExitCode
from kprov.provision.plan import Action, InstanceSpec, Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState, open_local_state
from kprov.state.mapping import MappingEntry
from kprov.state.registry import InstanceRecord, RegistrationRecord

ALG_ID = "11111111-1111-4111-8111-111111111111"
SPECS = {k: InstanceSpec("g", k.upper()) for k in ("alg", "bio", "big")}


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def person(ext: str, instance: str, role: str = "learner", line: int = 2) -> Person:
    return Person(ext, role, Origin("r.csv", line), instance)


def known(state: LocalState, *registered: tuple[str, str]) -> None:
    """alg exists; each (external id, role) is mapped and registered in it."""
    state.registry.instances.record(
        InstanceRecord("alg", ALG_ID, "g", "ALG"), state.registry.instance_index
    )
    for n, (ext, role) in enumerate(registered, start=1):
        entry = MappingEntry(ext, f"00000000-0000-4000-8000-{n:012d}", "2026-01-01T00:00:00Z")
        state.journal.append([entry])
        state.mapping.apply(entry)
        record = RegistrationRecord(entry.account_id, ALG_ID, role, f"reg-{ext}", ext)
        state.registry.registrations.record(record, state.registry.registration_index)


def plan(state: LocalState, people: list[Person], **request: object) -> Plan:
    request.setdefault("command", "register")
    req = Request(people=people, specs=SPECS, **request)  # type: ignore[arg-type]
    return build_plan(req, state.mapping, state.registry)


def fates(p: Plan) -> list[tuple[str, str, str]]:
    return [(i.action.value, i.external_id, i.instance) for i in p.items]


def test_learners_without_an_instructor_are_cannot_lines_and_the_rest_proceeds(
    state: LocalState,
) -> None:
    people = [
        person("s1", "bio"),
        person("s2", "bio", line=3),
        person("s1", "alg", line=4),
        person("t1", "alg", "instructor", line=5),
    ]
    p = plan(state, people)
    assert fates(p) == [
        ("create_account", "s1", "bio"),  # s1 is needed by alg: still created
        ("create_account", "t1", "alg"),  # s2 only by bio: not created
        ("block", "", "bio"),  # the instance is not created either
        ("create_instance", "", "alg"),
        ("block", "s1", "bio"),
        ("block", "s2", "bio"),
        ("register", "s1", "alg"),
        ("register", "t1", "alg"),
    ]
    reason = p.items[4].reason
    assert "class 'bio' has learners but no instructor" in reason
    assert "add its teacher to the roster" in reason and p.items[4].origin == Origin("r.csv", 2)


def test_the_blocked_class_line_names_the_class(
    state: LocalState, capsys: pytest.CaptureFixture[str]
) -> None:
    show_plan(plan(state, [person("s1", "bio")]), View(), run_id="kprov-1", code=ExitCode.OK)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("cannot:")]
    assert lines[0].startswith("cannot: instance bio: class 'bio' has learners but no")
    assert lines[1].startswith("cannot: learner s1 in bio (r.csv:2): class 'bio'")


def test_an_instructor_already_registered_is_enough(state: LocalState) -> None:
    known(state, ("t1", "instructor"))
    p = plan(state, [person("s1", "alg")])
    assert fates(p) == [("create_account", "s1", "alg"), ("register", "s1", "alg")]


def test_an_instructor_this_plan_removes_does_not_count(state: LocalState) -> None:
    known(state, ("t1", "instructor"), ("s0", "learner"))
    p = plan(
        state, [person("s1", "alg")], command="sync", prune=True, max_removals="100%",
        authoritative=frozenset({"alg"}), instances=("alg",),
    )  # fmt: skip
    assert ("unregister", "t1", "alg") in fates(p)  # no longer in the manifest
    assert ("block", "s1", "alg") in fates(p) and ("create_account", "s1", "alg") not in fates(p)


def test_a_role_change_is_both_halves_or_neither(state: LocalState) -> None:
    known(state, ("t1", "instructor"))
    p = plan(
        state, [person("t1", "alg", "learner")], command="sync", prune=True, max_removals="100%",
        authoritative=frozenset({"alg"}), instances=("alg",),
    )  # fmt: skip
    assert [i.action for i in p.items] == [Action.BLOCK, Action.BLOCK]  # no one left to teach


def test_a_class_of_more_than_500_is_refused_whole_and_named(state: LocalState) -> None:
    people = [person("t1", "big", "instructor")]
    people += [person(f"s{n}", "big", line=n + 3) for n in range(500)]
    people += [person("t2", "alg", "instructor", line=900), person("s0", "alg", line=901)]
    p = plan(state, people)
    blocked = [i for i in p.items if i.action is Action.BLOCK]
    assert len(blocked) == 502 and all(i.instance == "big" for i in blocked)
    assert "would have 501 registrations; the API allows 500" in blocked[0].reason
    assert {i.external_id for i in p.items if i.action is Action.REGISTER} == {"t2", "s0"}
    assert {i.external_id for i in p.items if i.action is Action.CREATE_ACCOUNT} == {"t2", "s0"}


def test_a_class_losing_its_last_instructor_while_learners_stay_is_warned_of(
    state: LocalState,
) -> None:
    """Its teacher left the export, its students did not (found by the 0.3.0 acceptance run
    on a Clever export): the removal goes, the learners stay, and the plan says that no
    learner can be added until the class has an instructor again."""
    known(state, ("t1", "instructor"), ("s0", "learner"), ("s1", "learner"))
    sync = {
        "command": "sync", "prune": True, "max_removals": "100%",
        "authoritative": frozenset({"alg"}), "instances": ("alg",),
    }  # fmt: skip
    p = plan(state, [person("s0", "alg"), person("s1", "alg", line=3)], **sync)
    assert fates(p) == [("unregister", "t1", "alg")]
    [warning] = p.warnings
    assert warning.startswith("class 'alg' loses its last instructor in this run (t1) and keeps 2")

    with_teacher = [person("t2", "alg", "instructor"), person("s0", "alg"), person("s1", "alg")]
    assert not plan(state, with_teacher, **sync).warnings  # another instructor joins
    assert not plan(state, [person("s0", "alg")], **{**sync, "prune": False}).warnings  # held


def test_no_such_warning_when_the_removal_brake_withholds_the_instructors_removal(
    state: LocalState,
) -> None:
    known(state, ("t1", "instructor"), ("s0", "learner"), ("s1", "learner"))
    sync = {
        "command": "sync", "prune": True, "max_removals": "0",
        "authoritative": frozenset({"alg"}), "instances": ("alg",),
    }  # fmt: skip
    p = plan(state, [person("s0", "alg"), person("s1", "alg", line=3)], **sync)
    [withheld] = p.items
    assert withheld.action is Action.UNREGISTER and withheld.guard  # nothing removed tonight
    assert not p.warnings


def test_a_role_change_stated_for_one_class_by_its_key_and_by_its_id_is_blocked_not_a_crash(
    state: LocalState,
) -> None:
    """Two lines, one naming the class by its key, one by its API id (a class stated by two
    sources): each made a role change of the one registration; blocking one pair (its ref
    has no instructor) looked up the other's ref among the blocked refs (KeyError)."""
    known(state, ("t1", "instructor"))
    people = [
        person("t1", "alg", "learner"),
        person("t2", "alg", "instructor", line=3),  # 'alg' has a new teacher
        person("t1", ALG_ID.upper(), "learner", line=4),  # the same class, by its id: none
    ]
    p = plan(state, people, command="sync", prune=True)
    sent = [i for i in p.items if i.action in (Action.REGISTER, Action.UNREGISTER)]
    assert [(i.action, i.external_id) for i in sent if i.role_change] in (
        [],  # both halves blocked
        [(Action.UNREGISTER, "t1"), (Action.REGISTER, "t1")],  # or both sent, once
    )


def test_one_registration_asked_under_two_names_of_its_class_is_asked_once(
    state: LocalState,
) -> None:
    """One class named by its key on one line and by its id on another (a class stated by
    two sources): each line asked for the registration, so it was sent twice -- and the
    second answer ("already registered", or a removal's "not found" after the first pair
    re-registered it) left it recorded without its id. The second line is a BLOCK."""
    known(state, ("t1", "instructor"), ("t2", "instructor"))
    people = [
        person("t1", "alg", "learner"),  # a role change
        person("s1", "alg", line=3),  # new
        person("t1", ALG_ID, "learner", line=4),  # the same two, by the class's id
        person("s1", ALG_ID, line=5),
        person("t2", ALG_ID, "instructor", line=6),  # kept
    ]
    p = plan(state, people, command="sync", prune=True)
    assert fates(p) == [
        ("create_account", "s1", "alg"),
        ("unregister", "t1", "alg"),
        ("register", "t1", "alg"),
        ("register", "s1", "alg"),
        ("block", "t1", ALG_ID),
        ("block", "s1", ALG_ID),
    ]
    assert "'alg'" in p.items[-1].reason
