"""Moves and instructor changes are named in the plan; the removal side stays a removal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.provision.plan import MOVED, NEW_INSTRUCTOR, Action, Plan
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState, open_local_state
from tests.planning import ALG_ID, BIO_ID, add_instance, add_registration, map_ids, plan

MANIFEST = Origin("semester.yaml", 1)
BUNDLE = Origin("district.zip!classes.csv", 2)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def person(ext: str, instance: str, role: str = "learner", line: int = 2) -> Person:
    return Person(ext, role, Origin(f"{instance}.csv", line), instance)


def semester(
    state: LocalState, people: list[Person], *, prune: bool, origins: dict[str, Origin]
) -> Plan:
    return plan(
        state, command="sync", people=people, prune=prune, max_removals="100%",
        authoritative=frozenset(origins), instances=tuple(origins), instance_origins=origins,
    )  # fmt: skip


def two_classes(state: LocalState) -> None:
    map_ids(state, "t1", "t2", "s1", "s2", "t9")
    add_instance(state, "p2", ALG_ID)
    add_instance(state, "p3", BIO_ID)
    add_registration(state, "t1", ALG_ID, "instructor", "r-t1")
    add_registration(state, "t2", BIO_ID, "instructor", "r-t2")
    add_registration(state, "s1", ALG_ID, "learner", "r-s1")
    add_registration(state, "s2", ALG_ID, "learner", "r-s2")


def test_a_student_moving_between_classes_of_one_source_is_a_move(state: LocalState) -> None:
    two_classes(state)
    people = [person("t1", "p2", "instructor"), person("s2", "p2"),
              person("t2", "p3", "instructor"), person("s1", "p3", line=7)]  # fmt: skip
    origins = {"p2": MANIFEST, "p3": MANIFEST._replace(line=9)}
    p = semester(state, people, prune=True, origins=origins)
    moved = {i.action: i for i in p.items if i.external_id == "s1"}
    assert set(moved) == {Action.REGISTER, Action.UNREGISTER}
    for item in moved.values():
        assert item.change == MOVED and item.reason.startswith("moved p2 → p3")
    assert "no longer in the manifest" not in moved[Action.UNREGISTER].reason
    assert moved[Action.UNREGISTER].origin == Origin("p3.csv", 7)  # the line that moved them
    assert p.brake is not None and p.brake.removals == 1


def test_without_prune_the_old_class_is_held_and_the_hold_says_why(state: LocalState) -> None:
    two_classes(state)
    people = [person("t1", "p2", "instructor"), person("s2", "p2"),
              person("t2", "p3", "instructor"), person("s1", "p3")]  # fmt: skip
    p = semester(state, people, prune=False, origins={"p2": MANIFEST, "p3": MANIFEST})
    [held] = [i for i in p.items if i.action is Action.HOLD]
    assert held.change == MOVED and held.instance == "p2"
    assert held.reason == "moved p2 → p3; pass --prune to remove it"


def test_classes_of_two_sources_are_a_leaver_and_a_joiner_not_a_move(state: LocalState) -> None:
    two_classes(state)
    people = [person("t1", "p2", "instructor"), person("s2", "p2"),
              person("t2", "p3", "instructor"), person("s1", "p3")]  # fmt: skip
    p = semester(state, people, prune=True, origins={"p2": MANIFEST, "p3": BUNDLE})
    assert all(i.change == "" for i in p.items)
    [removal] = [i for i in p.items if i.action is Action.UNREGISTER]
    assert removal.reason == "no longer in the manifest"
    assert removal.origin == MANIFEST  # the class's line, which no longer lists them


def test_a_new_teacher_is_named_as_an_instructor_change(state: LocalState) -> None:
    two_classes(state)
    people = [person("t9", "p2", "instructor"), person("s1", "p2"), person("s2", "p2"),
              person("t2", "p3", "instructor")]  # fmt: skip
    p = semester(state, people, prune=True, origins={"p2": MANIFEST, "p3": MANIFEST})
    changed = [i for i in p.items if i.change]
    assert {(i.action, i.external_id) for i in changed} == {
        (Action.UNREGISTER, "t1"), (Action.REGISTER, "t9"),
    }  # fmt: skip
    assert all(i.change == NEW_INSTRUCTOR for i in changed)
    assert all(i.reason == "instructor changed: t1 → t9" for i in changed)


def test_naming_changes_neither_adds_nor_drops_an_item(state: LocalState) -> None:
    two_classes(state)
    people = [person("t1", "p2", "instructor"), person("t2", "p3", "instructor"),
              person("s1", "p3"), person("s2", "p3")]  # fmt: skip
    named = semester(state, people, prune=True, origins={"p2": MANIFEST, "p3": MANIFEST})
    plain = semester(state, people, prune=True, origins={"p2": MANIFEST, "p3": BUNDLE})
    strip = lambda p: [(i.action, i.external_id, i.instance) for i in p.items]  # noqa: E731
    assert strip(named) == strip(plain)


def test_a_leaver_of_a_bundles_class_is_said_to_be_no_longer_in_that_bundle(
    state: LocalState,
) -> None:
    """A class defined by a bundle (its origin `district.zip!classes.csv`) is not in the
    manifest: its leaver is "no longer in district.zip", at the class's row."""
    two_classes(state)
    people = [person("t1", "p2", "instructor"), person("s2", "p2")]
    p = semester(state, people, prune=True, origins={"p2": BUNDLE})
    [gone] = [i for i in p.items if i.action is Action.UNREGISTER]
    assert (gone.external_id, gone.reason, gone.origin) == (
        "s1",
        "no longer in district.zip",
        BUNDLE,
    )
