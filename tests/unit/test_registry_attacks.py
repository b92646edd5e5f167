"""Plans against registries that an adversary's inputs reach: each a way a wrong index led
to a wrong removal, a duplicate registration or a lost registration id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.provision.plan import Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.rosters.model import Origin, Person
from kprov.rosters.people import People
from kprov.state.local import LocalState, open_local_state
from kprov.state.mapping import MappingEntry
from kprov.state.registry import RegistrationRecord

OUTSIDE = "33333333-3333-4333-8333-33333333abcd"  # made outside kprov: named by its id
STAMP = "2026-09-01T02:00:00Z"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def registered(state: LocalState, ext: str, n: int, role: str, instance: str) -> None:
    entry = MappingEntry(ext, f"00000000-0000-4000-8000-{n:012d}", STAMP)
    state.journal.append([entry])
    state.mapping.apply(entry)
    record = RegistrationRecord(entry.account_id, instance, role, f"reg-{ext}", ext, STAMP)
    state.registry.record_registration(record)


def plans(state: LocalState, lines: list[Person], **asked: object) -> list[Plan]:
    """The plan by column (``People``) and line by line (a list)."""
    return [
        build_plan(
            Request(people=people, **asked),  # type: ignore[arg-type]
            state.mapping,
            state.registry,
        )
        for people in (People(lines), list(lines))
    ]


@pytest.mark.parametrize("named", [OUTSIDE.upper(), OUTSIDE])
def test_a_class_named_by_its_id_in_upper_case_is_the_class_kprov_registered_in(
    state: LocalState, named: str
) -> None:
    """An instance made outside kprov, named by its API id in capitals: its registrations
    are recorded (and read back) in lower case, so every night planned them as new -- sent
    again, and the "already registered" answer recorded without its id over the record that
    had it."""
    registered(state, "t1", 1, "instructor", OUTSIDE)
    registered(state, "s1", 2, "learner", OUTSIDE)
    lines = [
        Person("t1", "instructor", Origin("r.csv", 2), named),
        Person("s1", "learner", Origin("r.csv", 3), named),
    ]
    for plan in plans(state, lines, command="register"):
        assert not plan.items
        assert len(plan.kept["already_registered"]) == 2


def test_a_class_keeps_an_account_a_line_asks_for_under_another_external_id(
    state: LocalState,
) -> None:
    """A mapping that gives two people one account (merged by hand, a restored backup): the
    registry records the account's registration under the first, the manifest lists the
    second. The line was kept as registered while the class's removals took the very same
    registration away (and its analytics with it)."""
    registered(state, "t1", 1, "instructor", OUTSIDE)
    registered(state, "p8", 2, "learner", OUTSIDE)
    shared = MappingEntry("p9", "00000000-0000-4000-8000-000000000002", STAMP)
    state.journal.append([shared])
    state.mapping.apply(shared)
    lines = [
        Person("t1", "instructor", Origin("r.csv", 2), OUTSIDE),
        Person("p9", "learner", Origin("r.csv", 3), OUTSIDE),
    ]
    for plan in plans(
        state, lines, command="sync", prune=True, max_removals="100%",
        authoritative=frozenset({OUTSIDE}), instances=(OUTSIDE,),
    ):  # fmt: skip
        assert not plan.items
        assert len(plan.kept["already_registered"]) == 2


def test_a_role_change_the_roster_contradicts_under_another_name_of_the_class_is_blocked(
    state: LocalState,
) -> None:
    """One line names the class by its key and asks for a learner, another by its id and
    keeps the instructor registration as it is: the role change unregistered what the second
    line keeps (its analytics gone) on a roster that contradicts itself."""
    registered(state, "t1", 1, "instructor", OUTSIDE)
    registered(state, "t2", 2, "instructor", OUTSIDE)
    lines = [
        Person("t1", "learner", Origin("r.csv", 2), OUTSIDE),
        Person("t2", "instructor", Origin("r.csv", 3), OUTSIDE),
        Person("t1", "instructor", Origin("r.csv", 4), OUTSIDE.upper()),
    ]
    for plan in plans(state, lines, command="sync", prune=True):
        assert [(i.action.value, i.external_id) for i in plan.items] == [("block", "t1")]
        assert "both" in plan.items[0].reason
