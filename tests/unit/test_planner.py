"""The planner: one pure decision per line, from rosters and local state, for every command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.provision.plan import Action, InstanceSpec, Plan
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState, open_local_state
from kprov.state.mapping import MappingEntry
from kprov.state.registry import RegistrationRecord
from tests.planning import ALG_ID, BIO_ID, account, add_instance, add_registration, map_ids, plan


def person(ext: str, role: str = "learner", instance: str | None = None, line: int = 2) -> Person:
    return Person(ext, role, Origin("r.csv", line), instance)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def actions(p: Plan) -> list[tuple[str, str, str]]:
    return [(i.action.value, i.external_id, i.instance) for i in p.items]


def test_accounts_plan_creates_each_unmapped_id_once_and_keeps_the_mapped(
    state: LocalState,
) -> None:
    map_ids(state, "s1")
    people = [person("s1"), person("s2", line=3), person("s2", instance="x", line=4)]
    p = plan(state, command="accounts import", people=people, register=False)
    assert actions(p) == [("create_account", "s2", "")]
    assert p.items[0].origin == Origin("r.csv", 3) and p.items[0].reason == "not in the mapping"
    assert {why: [w.external_id for w in who] for why, who in p.kept.items()} == {
        "already_mapped": ["s1"]
    }
    assert p.counts() == {"already_mapped": 1, "would_create": 1}


def test_register_plan_creates_what_is_missing_and_keeps_what_is_there(state: LocalState) -> None:
    map_ids(state, "t1", "s1")
    add_instance(state, "alg", ALG_ID)
    add_registration(state, "t1", ALG_ID, "instructor")
    people = [
        person("t1", "instructor", "alg"),
        person("s1", instance="alg"),
        person("s2", instance="alg"),
        person("s3", instance="bio"),
        person("t2", "instructor", instance="bio"),
    ]
    specs = {"bio": InstanceSpec("g", "Biology")}
    p = plan(state, command="register", people=people, specs=specs)
    assert actions(p) == [
        ("create_account", "s2", "alg"),
        ("create_account", "s3", "bio"),
        ("create_account", "t2", "bio"),
        ("create_instance", "", "bio"),
        ("register", "s1", "alg"),
        ("register", "s2", "alg"),
        ("register", "s3", "bio"),
        ("register", "t2", "bio"),
    ]
    registered = p.items[4]
    assert (registered.account_id, registered.instance_id) == (account(2), ALG_ID)
    assert p.items[6].instance_id == ""  # created by this plan
    assert list(p.kept) == ["already_registered"] and len(p.kept["already_registered"]) == 1


def test_an_instance_column_that_disagrees_with_instance_is_refused_naming_both(
    state: LocalState,
) -> None:
    with pytest.raises(InputError) as refused:
        plan(
            state, command="register", people=[person("s1", instance="bio")], default_instance="alg"
        )
    assert "'bio'" in str(refused.value) and "'alg'" in str(refused.value)
    assert "r.csv:2" in str(refused.value)


def test_unknown_instances_without_a_graph_id_are_input_errors(state: LocalState) -> None:
    with pytest.raises(InputError, match="not known to kprov"):
        plan(state, command="register", people=[person("s1")], default_instance="nowhere")


def test_no_create_blocks_lines_without_an_account(state: LocalState) -> None:
    add_instance(state, "alg", ALG_ID)
    p = plan(
        state, command="register", people=[person("s9")], default_instance="alg",
        create_accounts=False,
    )  # fmt: skip
    [item] = p.items
    assert item.action is Action.BLOCK and "not in the mapping" in item.reason


def test_a_role_conflict_fails_the_line_until_sync_prune_changes_it(
    state: LocalState,
) -> None:
    map_ids(state, "u1")
    add_instance(state, "alg", ALG_ID)
    add_registration(state, "u1", ALG_ID, "learner", "reg-1")
    line = [person("u1", "instructor", "alg")]
    blocked = plan(state, command="register", people=line)
    assert [i.action for i in blocked.items] == [Action.BLOCK]
    held = plan(state, command="sync", people=line)
    assert [i.action for i in held.items] == [Action.BLOCK]
    assert "pass --prune to change the role" in held.items[0].reason
    changed = plan(
        state, command="sync", people=line, prune=True,
        max_removals="100%", authoritative=frozenset({"alg"}),
    )  # fmt: skip
    assert [(i.action, i.role, i.role_change) for i in changed.items] == [
        (Action.UNREGISTER, "learner", True),
        (Action.REGISTER, "instructor", True),
    ]


def sync_state(state: LocalState) -> None:
    map_ids(state, "t1", "s1", "s2", "s3", "x1")
    add_instance(state, "alg", ALG_ID)
    add_instance(state, "bio", BIO_ID)
    add_registration(state, "t1", ALG_ID, "instructor", "reg-t1")
    add_registration(state, "s1", ALG_ID, "learner", "reg-s1")
    add_registration(state, "s2", ALG_ID, "learner", "reg-s2")
    add_registration(state, "s3", ALG_ID, "learner", "")  # confirmed without its id
    add_registration(state, "x1", BIO_ID, "learner", "reg-x1")  # not a managed instance


def test_sync_removes_only_in_authoritative_instances_and_only_with_prune(
    state: LocalState,
) -> None:
    sync_state(state)
    people = [person("t1", "instructor", "alg"), person("s1", instance="alg")]
    common = {"command": "sync", "people": people, "authoritative": frozenset({"alg"}),
              "instances": ("alg",)}  # fmt: skip
    without = plan(state, **common)
    assert {(i.action.value, i.external_id) for i in without.items} == {
        ("hold", "s2"),
        ("hold", "s3"),
    }
    assert all("--prune" in i.reason for i in without.items)
    pruned = plan(state, **common, prune=True, max_removals="100%")
    assert {(i.action.value, i.external_id) for i in pruned.items} == {
        ("unregister", "s2"),
        ("hold", "s3"),  # id unknown: a human must resolve or forget it
    }
    [removal] = [i for i in pruned.items if i.action is Action.UNREGISTER]
    assert removal.registration_id == "reg-s2" and removal.reason == "no longer in the manifest"
    assert pruned.brake is not None and (pruned.brake.removals, pruned.brake.managed) == (1, 4)


def test_the_brake_is_judged_on_the_plan(state: LocalState) -> None:
    sync_state(state)
    p = plan(
        state, command="sync", people=[person("t1", "instructor", "alg")],
        authoritative=frozenset({"alg"}), prune=True,
        max_removals="10%",
    )  # fmt: skip
    assert p.brake is not None and p.brake.limit == 0 and p.removals_withheld
    assert "withheld" in p.counts()


def test_delta_removals_are_explicit_and_a_delta_never_implies_one(state: LocalState) -> None:
    sync_state(state)
    gone = Person("s1", "learner", Origin("bundle!enrollments.csv", 7), "alg")
    p = plan(
        state, command="sync", people=[], removals=[gone], prune=True, max_removals="100%",
        authoritative=frozenset(), instances=("alg",),
    )  # fmt: skip
    [item] = p.items
    assert (item.action, item.external_id) == (Action.UNREGISTER, "s1")
    assert item.reason == "tobedeleted in bundle!enrollments.csv:7"


def test_unregister_of_someone_not_registered_is_a_failed_line(state: LocalState) -> None:
    sync_state(state)
    p = plan(
        state, command="unregister", removals=[person("s1"), person("nobody")],
        default_instance="alg", register=False, prune=True,
    )  # fmt: skip
    assert [(i.action.value, i.external_id) for i in p.items] == [
        ("unregister", "s1"),
        ("block", "nobody"),
    ]


def test_lines_past_what_an_instance_already_holds_are_blocked(state: LocalState) -> None:

    add_instance(state, "alg", ALG_ID)
    records = [
        RegistrationRecord(account(900 + n), ALG_ID, "learner" if n else "instructor", f"r{n}",
                           f"old-{n}")
        for n in range(499)
    ]  # fmt: skip
    state.registry.registrations.append_rows([r.row() for r in records])
    for record in records:
        state.registry.registration_index.apply(record)
    map_ids(state, "s1", "s2")
    lines = [person("s1", instance="alg"), person("s2", instance="alg", line=3)]
    p = plan(state, command="register", people=lines)
    assert [(i.action.value, i.external_id) for i in p.items] == [
        ("register", "s1"),
        ("block", "s2"),
    ]
    assert "already holds 500 registrations" in p.items[1].reason


def test_a_registration_the_registry_holds_is_kept_when_disabled_or_when_the_mapping_lost_it(
    state: LocalState,
) -> None:
    map_ids(state, "t1", "s1", "s2")
    add_instance(state, "alg", ALG_ID)
    add_registration(state, "t1", ALG_ID, "instructor", "reg-t1")
    add_registration(state, "s1", ALG_ID)
    add_registration(state, "s2", ALG_ID)
    disabled = MappingEntry("s1", account(2), "2026-01-01T00:00:00Z", status="disabled")
    state.journal.append([disabled])
    state.mapping.apply(disabled)
    del state.mapping.account_of["s2"]  # the mapping's torn last line, moved aside
    people = [person("s1", instance="alg"), person("s2", instance="alg", line=3)]
    people.append(person("s3", instance="alg", line=4))
    p = plan(state, command="register", people=people)
    assert [w.external_id for w in p.kept["already_registered"]] == ["s1", "s2"]
    assert actions(p) == [
        ("create_account", "s2", "alg"),  # recovered by the run: the mapping heals
        ("create_account", "s3", "alg"),
        ("register", "s3", "alg"),
    ]
    again = plan(state, command="register", people=[person("s1", "instructor", "alg")])
    assert actions(again) == [("block", "s1", "alg")]  # another role for a disabled account
