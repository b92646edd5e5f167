"""Defects a new user found running the nightly job over several nights (pure passes):

- a source that shrank sharply is held whatever the grace: its removals waiting out their
  grace are withheld by the source guard and said to be frozen, and the counts its night
  would leave are kept for the hold's approval (which counts the night, keeps the grace);
- a move (or a teacher change) whose addition was made on an earlier night is still named
  on the night its removal's grace ends, and a class someone was in all along is no move;
- a manifest that changes what the API cannot change about an existing class (its graph,
  name, dates) is said on every plan and run, not silently ignored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.provision.execute import Executor
from kprov.provision.guards import SOURCE, GuardHistory, GuardSettings
from kprov.provision.guards_grace import Absence, counted_reason
from kprov.provision.holds import approval_plan, hold_id_of, run_guards
from kprov.provision.plan import MOVED, NEW_INSTRUCTOR, Action, InstanceSpec, Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.provision.run_record import item_rows
from kprov.rosters.model import Origin, Person
from kprov.state import ledger_guards as store
from kprov.state.ledger import Ledger, RunEnd, RunStart
from kprov.state.local import LocalState, open_local_state
from kprov.state.registry import RegistrationRecord
from tests.fakes import FakeApi
from tests.planning import (
    ALG_ID,
    BIO_ID,
    absent,
    add_instance,
    district,
    map_ids,
    people,
    reference,
    sync,
)

IDS = [f"s{n:04d}" for n in range(40)]  # account(n): t1 is 1, s0000 is 2 ...


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def shrunk(state: LocalState, grace: int, **more: object) -> Plan:
    district(state, IDS)
    earlier = absent("s0039", 41, 1, since="kprov-1")  # absent one night already
    history = GuardHistory(reference(IDS).references, {earlier.key: earlier})
    return sync(state, people(IDS[:10]), history, guards=GuardSettings(grace=grace), **more)


def test_a_shrunk_source_withholds_its_removals_inside_their_grace_and_says_frozen(
    state: LocalState,
) -> None:
    plan = shrunk(state, grace=2)
    assert plan.guards is not None
    [trip] = plan.guards.trips
    assert trip.guard == SOURCE and trip.items == 30 and "shrank sharply" in trip.why
    assert plan.counts() == {"already_registered": 11, "withheld": 30}
    fates = {i.external_id: i for i in plan.items}
    frozen, due = fates["s0010"], fates["s0039"]
    assert (frozen.action, frozen.guard, due.action, due.guard) == (
        Action.WAIT, SOURCE, Action.UNREGISTER, SOURCE,
    )  # fmt: skip
    assert frozen.reason.endswith(
        "no longer in the manifest; frozen at 0 of 2: held nights do not count (--grace 2)"
    )
    assert "absent from" not in frozen.reason
    verdict = plan.guards
    assert verdict.absences.instances == frozenset() and verdict.absences.records == ()
    assert verdict.held_absences.instances == {ALG_ID}
    counts = sorted(r.count for r in verdict.held_absences.records)
    assert counts == [1] * 29 + [2]  # what the night counts if its hold is approved
    assert counted_reason(frozen.reason.partition("; ")[2]) == (
        "no longer in the manifest; waiting 1 of 2 (absent from 1 run; --grace 2)"
    )


def test_without_prune_a_shrunk_sources_removals_are_withheld_too(state: LocalState) -> None:
    plan = shrunk(state, grace=2, prune=False)
    assert plan.counts() == {"already_registered": 11, "withheld": 30}
    assert {i.action for i in plan.items} == {Action.HOLD}


def test_approving_a_held_source_counts_its_night_and_keeps_the_grace(
    state: LocalState, tmp_path: Path
) -> None:
    plan = shrunk(state, grace=2)
    ledger = Ledger.open(tmp_path / "state")
    assert ledger is not None
    start = RunStart("kprov-aaaaaaaaaaaa", "sync", "apply", time.time(), job="sync /s.yaml")
    ledger.begin_run(start, (), item_rows(plan, {}, {}))
    result = Executor(FakeApi(), state).run(plan)
    guards = run_guards(plan, result, run_id=start.run_id, job=start.job, profile="p",
                        base_url="u", facts=("s", "i"), cursors={}, now=time.time())  # fmt: skip
    ledger.end_run(start.run_id, RunEnd(time.time(), 6), also=store.write_run_guards(guards))
    assert store.absence_rows(ledger) == []  # the held night counts nothing (yet)
    hold = store.find_hold(ledger, hold_id_of(start.run_id))
    approval = approval_plan(hold, store.held_rows(ledger, hold), state.registry)
    waiting = [i for i in approval.items if i.action is Action.WAIT]
    assert len(waiting) == 29 and not any(i.guard for i in approval.items)
    assert waiting[0].reason.endswith("waiting 1 of 2 (absent from 1 run; --grace 2)")
    decide = store.decide(hold["hold_id"], store.APPROVED, who="ops@h", now=1.0,
                          run_id="kprov-b", run_key=int(hold["run_key"]))  # fmt: skip
    ledger.begin_run(RunStart("kprov-b", "holds approve", "apply", time.time()), also=decide)
    counted = {r["person"]: (r["count"], r["last_run"]) for r in store.absence_rows(ledger)}
    assert len(counted) == 30 and counted["s0039"] == (2, start.run_id)
    assert counted["s0010"] == (1, start.run_id)
    ledger.close()


# ------------------------------------------- a move named on the night its grace ends

NIGHT_1, NIGHT_2 = "2026-09-01T02:00:00Z", "2026-09-02T02:00:00Z"


def registered(state: LocalState, ext: str, instance_id: str, role: str, at: str) -> None:
    account_id = state.mapping.account_of[ext]
    record = RegistrationRecord(account_id, instance_id, role, f"r-{ext}-{instance_id}", ext, at)
    state.registry.registrations.record(record, state.registry.registration_index)


def gone_since(state: LocalState, ext: str, instance_id: str, role: str, at: str) -> Absence:
    return Absence(state.mapping.account_of[ext], instance_id, ext, "", role, "/s/semester.yaml",
                   1, since="kprov-night-2", since_at=at)  # fmt: skip


def test_a_move_and_a_teacher_change_keep_their_names_when_the_grace_ends(
    state: LocalState,
) -> None:
    """Night 3, grace 2: s1 joined p3 on night 2 and leaves p2 tonight; t9 took over p3 from
    t2 on night 2. s2 has been in both classes since night 1 and only drops p2; t3 co-taught
    p2 with t1 since night 1 and leaves: neither is a move or a change."""
    map_ids(state, "t1", "t2", "t3", "t9", "s1", "s2")
    add_instance(state, "p2", ALG_ID)
    add_instance(state, "p3", BIO_ID)
    for ext, instance_id, role, at in (
        ("t1", ALG_ID, "instructor", NIGHT_1), ("t3", ALG_ID, "instructor", NIGHT_1),
        ("t2", BIO_ID, "instructor", NIGHT_1), ("t9", BIO_ID, "instructor", "2026-09-02T02:00:07Z"),
        ("s1", ALG_ID, "learner", NIGHT_1), ("s1", BIO_ID, "learner", "2026-09-02T02:00:05Z"),
        ("s2", ALG_ID, "learner", NIGHT_1), ("s2", BIO_ID, "learner", NIGHT_1),
    ):  # fmt: skip
        registered(state, ext, instance_id, role, at)
    absences = [gone_since(state, "s1", ALG_ID, "learner", NIGHT_2),
                gone_since(state, "s2", ALG_ID, "learner", NIGHT_2),
                gone_since(state, "t2", BIO_ID, "instructor", NIGHT_2),
                gone_since(state, "t3", ALG_ID, "instructor", NIGHT_2)]  # fmt: skip
    tonight = [Person("t1", "instructor", Origin("semester.yaml", 4), "p2"),
               Person("t9", "instructor", Origin("semester.yaml", 9), "p3"),
               Person("s1", "learner", Origin("p3.csv", 7), "p3"),
               Person("s2", "learner", Origin("p3.csv", 8), "p3")]  # fmt: skip
    origins = {"p2": Origin("semester.yaml", 3), "p3": Origin("semester.yaml", 8)}
    request = Request(
        command="sync", people=tonight, prune=True, max_removals="100%",
        authoritative=frozenset(origins), instances=tuple(origins), instance_origins=origins,
        guards=GuardSettings(grace=2),
    )  # fmt: skip
    history = GuardHistory(absences={a.key: a for a in absences})
    plan = build_plan(request, state.mapping, state.registry, history)
    removed = {i.external_id: i for i in plan.items}
    assert {i.action for i in removed.values()} == {Action.UNREGISTER}
    assert (removed["s1"].change, removed["s1"].reason) == (MOVED, "moved p2 → p3")
    assert removed["s1"].origin == Origin("p3.csv", 7)  # the line that lists them now
    assert (removed["t2"].change, removed["t2"].reason) == (
        NEW_INSTRUCTOR, "instructor changed: t2 → t9",
    )  # fmt: skip
    assert removed["t2"].origin == Origin("semester.yaml", 8)  # the class's line
    for plain in ("s2", "t3"):
        assert (removed[plain].change, removed[plain].reason) == ("", "no longer in the manifest")


# --------------------------------------- what the API cannot change about a class


def test_a_manifest_change_the_api_cannot_make_is_a_warning_on_every_plan(
    state: LocalState,
) -> None:
    """bio was created with graph g, named BIO, without dates (``add_instance``); no API
    call renames an instance, re-dates it or changes its graph."""
    add_instance(state, "bio", BIO_ID)
    add_instance(state, "alg", ALG_ID)

    def warnings(bio: InstanceSpec, command: str = "sync", by_key: bool = False) -> list[str]:
        specs = {"bio": bio, "alg": InstanceSpec("g", "ALG")}
        origins = {"bio": Origin("semester.yaml", 22), "alg": Origin("semester.yaml", 3)}
        request = Request(command=command, specs=specs, instances=tuple(specs),
                          instance_origins=origins, nobody_is_fine=True,
                          named_by_key=frozenset({"bio"} if by_key else ()))  # fmt: skip
        plan = build_plan(request, state.mapping, state.registry)
        assert plan.items == () and not plan.has_changes
        return list(plan.warnings)

    assert warnings(InstanceSpec("g", "BIO")) == []  # as created: nothing to say
    [graph, name, dates] = warnings(
        InstanceSpec("gref-chemistry", "Biology, period 3", "2026-09-01", "2027-01-31")
    )
    assert graph.startswith(
        "instance bio (semester.yaml:22) exists with graph g; the manifest says "
        "gref-chemistry: an instance's graph cannot change; it is left as it is"
    )
    assert "named 'BIO'; the manifest says 'Biology, period 3'" in name
    assert "cannot rename" in name
    assert "with no dates; the manifest says 2026-09-01 to 2027-01-31" in dates
    assert warnings(InstanceSpec("gref-chemistry", "BIO"), command="register") == []
    assert warnings(InstanceSpec("g", "bio"), by_key=True) == []  # a `rosters:` class's name
