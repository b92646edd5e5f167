"""The guards, judged on the plan (pure): the source guard, the creation and removal brakes,
the removal grace, and what each leaves for the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.provision.guards import (
    CREATIONS,
    REMOVALS,
    SOURCE,
    GuardHistory,
    GuardSettings,
    SourceReading,
)
from kprov.provision.guards_sources import observe
from kprov.provision.plan import Action, InstanceSpec, Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState, open_local_state
from tests.planning import (
    ALG_ID,
    ROSTER,
    absent,
    add_instance,
    add_registration,
    district,
    map_ids,
    people,
    reference,
    sync,
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


STUDENT_NUMBERS = [f"{100_000 + n * 28_571:09d}" for n in range(30)]


def test_a_rekeyed_export_is_withheld_whole_and_said_in_words(state: LocalState) -> None:
    district(state, STUDENT_NUMBERS)
    rekeyed = [str(int(n)) for n in STUDENT_NUMBERS]
    plan = sync(state, people(rekeyed), reference(STUDENT_NUMBERS))
    assert plan.guards is not None and plan.guards.held_sources == {ROSTER}
    sending = [i for i in plan.items if i.action is not Action.HOLD]
    assert len(sending) == 90 and {i.guard for i in sending} == {SOURCE}
    [trip] = plan.guards.trips
    assert trip.items == 90 and trip.why == (
        f"{ROSTER}: last applied export: 30 ids, 9 digits with leading zeros; this one: 30 ids, "
        "6 digits, no leading zeros; 0 seen before; their lengths changed, leading zeros "
        "dropped: re-keyed?"
    )
    assert plan.counts() == {"already_registered": 1, "withheld": 90}
    assert plan.guards.absences.instances == frozenset()  # a held class's absences: not counted
    [fingerprint] = plan.guards.fingerprints
    assert fingerprint.ids == 30 and len(fingerprint.sample) == 30


def test_the_first_export_a_small_one_and_ordinary_churn_are_never_held(
    state: LocalState,
) -> None:
    ids = [f"s{n:04d}" for n in range(40)]
    district(state, ids)
    unlimited = GuardSettings(max_creations=None)
    first = sync(state, people([f"x{n}" for n in range(40)]), GuardHistory(), guards=unlimited)
    assert first.guards is not None and not first.guards.trips
    churn = ids[5:] + [f"s9{n:03d}" for n in range(8)]  # 5 leave, 8 join
    assert not sync(state, people(churn), reference(ids)).withheld
    small = [f"q{n}" for n in range(19)]  # under MIN_IDS: anything goes
    earlier = reference([f"p{n}" for n in range(19)])
    assert not sync(state, people(small), earlier, guards=unlimited).withheld


def test_a_source_that_shrank_sharply_is_held(state: LocalState) -> None:
    ids = [f"s{n:04d}" for n in range(40)]
    district(state, ids)
    plan = sync(state, people(ids[:16]), reference(ids))
    assert plan.guards is not None
    [trip] = plan.guards.trips
    assert "40 ids" in trip.why and "16 ids" in trip.why and "60 % fewer ids" in trip.why
    assert {i.guard for i in plan.items if i.action is Action.UNREGISTER} == {SOURCE}
    emptied = sync(state, [], reference(ids))  # a header and nothing else: "all left"
    assert emptied.counts()["withheld"] == 40 and not emptied.has_changes


def test_students_moving_between_class_files_are_seen_before(state: LocalState) -> None:
    ids = [f"s{n:04d}" for n in range(50)]
    others = [f"o{n:04d}" for n in range(40)]
    district(state, ids, tuple(others))  # others: enrolled in other classes' files
    moved = ids[:20] + others  # 40 of 60 are new to this file, all have accounts
    plan = sync(state, people(moved), reference(ids))
    assert not plan.withheld
    rekeyed = ids[:20] + [f"n{n:04d}" for n in range(40)]  # 40 of 60 never seen anywhere
    assert sync(state, people(rekeyed), reference(ids)).withheld


def test_the_sketch_measures_the_overlap_of_a_large_source() -> None:
    from kprov.provision.guards_judge import Thresholds, judge
    from kprov.provision.guards_sources import SAMPLE

    before = [f"{n:07d}" for n in range(20_000)]
    now = before[:9_000] + [f"{n:07d}" for n in range(50_000, 61_000)]  # 45 % seen
    last = observe(people(before), [ROSTER])[ROSTER].fingerprint
    tonight = observe(people(now), [ROSTER])[ROSTER]
    assert len(last.sample) == SAMPLE and len(tonight.fingerprint.sample) == SAMPLE
    verdict = judge(last, tonight, set(), Thresholds())
    assert verdict.held and "re-keyed?" in verdict.words
    share = int(verdict.words.split("(")[1].split("%")[0])
    assert 40 <= share <= 50  # 45 % within the sample's error
    assert not judge(last, tonight, set(), Thresholds(min_seen=40)).held  # settable


def test_a_delta_is_judged_by_the_shape_of_its_ids_only(state: LocalState) -> None:
    from kprov.provision.guards_judge import Thresholds, judge

    full = observe(people(STUDENT_NUMBERS), [ROSTER])[ROSTER].fingerprint
    few_new = observe(people(STUDENT_NUMBERS[:25]), [ROSTER], deltas={ROSTER})[ROSTER]
    assert not judge(full, few_new, set(), Thresholds()).held  # a delta is not a shrink
    damaged = [str(int(n)) for n in STUDENT_NUMBERS[:25]]
    changed = observe(people(damaged), [ROSTER], deltas={ROSTER})[ROSTER]
    verdict = judge(full, changed, set(), Thresholds())
    assert verdict.held and "leading zeros dropped" in verdict.words


def test_hashed_ids_are_shaped_by_their_sis_id_and_keyed_by_their_hash() -> None:
    hashed = [
        Person(f"h{n:032x}", "learner", Origin(ROSTER, n + 2), "alg", sis_id=sis)
        for n, sis in enumerate(STUDENT_NUMBERS)
    ]
    fingerprint = observe(hashed, [ROSTER])[ROSTER].fingerprint
    assert fingerprint.shape.leading_zeros == 1.0 and fingerprint.shape.longest == 9


def test_a_real_sds_export_read_with_a_new_id_prefix_is_held(tmp_path: Path) -> None:
    """A careless hand adds `id_prefix:` to a manifest: every id of the real SDS export is
    new tonight (tests/data/real: Microsoft's sample, nobody here wrote it)."""
    from kprov.provision.guards_judge import Thresholds, judge
    from kprov.provision.guards_sources import Observation, stable_key
    from kprov.rosters.manifest import read_manifest

    bundle = Path(__file__).parents[1] / "data" / "real" / "sds" / "v1-100-users"

    def night(prefix: str) -> tuple[Observation, str]:
        path = tmp_path / "semester.yaml"
        path.write_text(f"defaults:\n  graph_id: g\nsds:\n  - path: {bundle}\n{prefix}")
        manifest = read_manifest(path)
        found = observe(
            manifest.people,
            manifest.reading.sources,
            deltas=manifest.reading.deltas,
            headers=manifest.reading.headers,
        )
        return found[stable_key(str(bundle))], manifest.people[0].external_id  # fmt: skip

    before, first = night("")
    after, renamed = night("    id_prefix: d1-\n")
    assert renamed == f"d1-{first}"
    assert "StudentEnrollment.csv: Section SIS ID,SIS ID" in before.fingerprint.header
    verdict = judge(before.fingerprint, after, set(), Thresholds())
    assert verdict.held and "0 seen before" in verdict.words
    assert not judge(before.fingerprint, before, set(), Thresholds()).held


# ------------------------------------------------------------------ the brakes


def creations_plan(state: LocalState, mapped: int, new: int, **more: object) -> Plan:
    ids = [f"s{n:04d}" for n in range(max(mapped, 3))]
    map_ids(state, "t1", *ids)
    add_instance(state, "alg", ALG_ID)
    add_registration(state, "t1", ALG_ID, "instructor", "r-t1")
    add_registration(state, ids[0], ALG_ID, reg_id="r-0")
    lines = [
        Person("t9", "instructor", Origin("new.csv", 2), "new"),
        *people([f"n{n}" for n in range(new)], "new", "new.csv"),
        Person(ids[1], "learner", Origin("new.csv", 99), "new"),  # has an account
        Person(ids[2], "learner", Origin("alg.csv", 3), "alg"),  # goes: nothing withheld
    ]
    request = Request(
        command="register", people=lines, specs={"new": InstanceSpec("g", "New")}, **more,  # type: ignore[arg-type]
    )  # fmt: skip
    return build_plan(request, state.mapping, state.registry)


def test_no_creation_limit_while_the_mapping_holds_fewer_than_100(state: LocalState) -> None:
    assert not creations_plan(state, 98, 50).withheld  # 99 mapped: a first term
    assert not creations_plan(state, 98, 50, guards=GuardSettings(max_creations="5%")).withheld


def test_a_number_of_creations_given_is_a_limit_even_for_a_first_term(state: LocalState) -> None:
    """`--max-creations 5` on a careful first night means 5: only a share waits for a mapping
    of 100 (a share of an empty mapping would hold everything)."""
    plan = creations_plan(state, 3, 12, guards=GuardSettings(max_creations="5"))
    assert plan.guards is not None
    [trip] = plan.guards.trips
    assert trip.why.startswith("13 new accounts exceed the creation limit of 5: an account")
    assert not creations_plan(state, 3, 12, guards=GuardSettings(max_creations="13")).withheld


def test_past_the_creation_limit_creations_and_what_needs_them_are_withheld(
    state: LocalState,
) -> None:
    plan = creations_plan(state, 120, 12)  # 121 mapped: the limit is 12; 13 new accounts
    fates = {(i.action.value, i.external_id): i.guard for i in plan.items}
    assert fates[("create_account", "t9")] == fates[("register", "n0")] == CREATIONS
    assert fates[("register", "s0001")] == CREATIONS  # its class's only instructor is held
    assert fates[("register", "s0002")] == "" and fates[("create_instance", "")] == ""
    assert plan.guards is not None
    [trip] = plan.guards.trips
    assert trip.items == 13 + 13 + 1
    assert trip.why.startswith("13 new accounts exceed the creation limit of 12 (10% of the 121")
    assert not creations_plan(state, 120, 12, guards=GuardSettings(max_creations="13")).withheld


def test_a_resumed_run_does_not_count_the_creations_it_resumes(state: LocalState) -> None:
    resumed = frozenset({"t9", *(f"n{n}" for n in range(12))})
    ids = [f"s{n:04d}" for n in range(120)]
    map_ids(state, "t1", *ids)
    lines = [Person("t9", "learner", Origin("r.csv", 2)), *people([f"n{n}" for n in range(12)])]
    request = Request(command="accounts import", people=lines, register=False)
    plan = build_plan(request, state.mapping, state.registry, GuardHistory(resumed=resumed))
    assert not plan.withheld and len(plan.items) == 13


def test_a_bad_creation_limit_is_refused_before_anything_is_sent() -> None:
    from kprov.provision.request import checked_limit

    with pytest.raises(InputError, match="--max-creations"):
        checked_limit("lots", "--max-creations")


def test_past_the_removal_limit_removals_and_role_changes_are_withheld(
    state: LocalState,
) -> None:
    ids = [f"s{n:04d}" for n in range(30)]
    district(state, ids)
    plan = sync(state, people(ids[20:]), GuardHistory(), max_removals="5")
    removals = [i for i in plan.items if i.action is Action.UNREGISTER]
    assert len(removals) == 20 and {i.guard for i in removals} == {REMOVALS}
    assert plan.removals_withheld and plan.counts()["withheld"] == 20


# -------------------------------------------------------------------- the grace


def test_a_removal_waits_out_its_grace_and_only_classes_read_are_counted(
    state: LocalState,
) -> None:
    ids = [f"s{n:04d}" for n in range(10)]
    district(state, ids)  # account(n): t1 is 1, s0000 is 2 ...
    earlier = {absent("s0001", 3, 1).key: absent("s0001", 3, 1, since="kprov-1")}
    plan = sync(state, people(ids[2:]), GuardHistory(absences=earlier),
                guards=GuardSettings(grace=2))  # fmt: skip
    fates = {i.external_id: (i.action, i.reason) for i in plan.items}
    assert fates["s0000"][0] is Action.WAIT and "waiting 1 of 2" in fates["s0000"][1]
    assert fates["s0001"][0] is Action.UNREGISTER  # its second run without them
    assert plan.counts() == {"already_registered": 9, "waiting": 1, "would_remove": 1}
    assert plan.guards is not None
    update = plan.guards.absences
    assert update.instances == {ALG_ID}
    assert {(r.person, r.count, r.since) for r in update.records} == {
        ("s0000", 1, ""), ("s0001", 2, "kprov-1"),
    }  # fmt: skip
    back = sync(state, people(ids), GuardHistory(absences=earlier), guards=GuardSettings(grace=2))
    assert back.guards is not None and back.guards.absences.records == ()  # reset
    no_prune = sync(state, people(ids[1:]), GuardHistory(), prune=False,
                    guards=GuardSettings(grace=2))  # fmt: skip
    assert [i.action for i in no_prune.items] == [Action.HOLD]  # held as before; counted
    assert no_prune.guards is not None and len(no_prune.guards.absences.records) == 1


def test_a_delta_removal_not_applied_is_remembered_until_done_or_reenrolled(
    state: LocalState,
) -> None:
    ids = [f"s{n:04d}" for n in range(10)]
    district(state, ids)
    delta = "https://sis.example/ims/oneroster/v1p1"
    gone = absent("s0003", 5, 1, delta, explicit=True, file=f"{delta}!enrollments.csv", line=7,
                  reason=f"tobedeleted in {delta}!enrollments.csv:7")  # fmt: skip
    reading = SourceReading(sources=(delta,), deltas=frozenset({delta}))
    request = Request(command="sync", people=[], prune=True, nobody_is_fine=True,
                      max_removals="100%", reading=reading)  # fmt: skip
    history = GuardHistory(absences={gone.key: gone})
    plan = build_plan(request, state.mapping, state.registry, history)
    [item] = plan.items
    assert (item.action, item.external_id, item.registration_id) == (
        Action.UNREGISTER, "s0003", "r-3",
    )  # fmt: skip
    assert item.reason == gone.reason and item.origin == Origin(gone.file, 7)
    assert plan.guards is not None
    [record] = plan.guards.absences.records
    assert record.explicit and record.count == 2
    again = Person("s0003", "learner", Origin(f"{delta}!enrollments.csv", 3), "alg")
    back = build_plan(
        Request(command="sync", people=[again], prune=True, reading=reading),
        state.mapping, state.registry, history,
    )  # fmt: skip
    assert [i.action for i in back.items] == [] and back.guards is not None
    assert back.guards.absences.records == () and back.guards.absences.sources == {delta}
    unrelated = Request(command="sync", people=people(ids), prune=True)  # not the delta
    assert build_plan(unrelated, state.mapping, state.registry, history).items == ()


def test_the_manifest_sets_the_guards_and_the_command_line_wins(tmp_path: Path) -> None:
    from kprov.cli.guarded import with_guard_settings
    from kprov.provision.request import sync_request
    from kprov.rosters.manifest import read_manifest
    from kprov.run_settings import RunSettings

    path = tmp_path / "semester.yaml"
    path.write_text(
        "max_creations: 5%\nremoval_grace: 3\ninstances:\n  - key: alg\n    name: Alg\n"
        "    graph_id: g\n    people:\n      - instructors: [t1]\n"
    )
    manifest = read_manifest(path)
    profile = RunSettings(max_creations="20", removal_grace=2, source_min_seen=30)
    asked = sync_request(manifest, prune=True, max_removals=None)
    settings = with_guard_settings(asked, profile).guards
    assert (settings.max_creations, settings.grace) == ("5%", 3)
    assert settings.thresholds.min_seen == 30
    given = sync_request(manifest, prune=True, max_removals=None, max_creations="7", grace=1)
    assert with_guard_settings(given, profile).guards.max_creations == "7"
    assert with_guard_settings(given, profile).guards.grace == 1
    plain = tmp_path / "plain.yaml"
    plain.write_text(path.read_text().split("\n", 2)[2])
    unset = sync_request(read_manifest(plain), prune=True, max_removals=None)
    assert with_guard_settings(unset, profile).guards.max_creations == "20"
    path.write_text(path.read_text().replace("5%", "lots"))
    with pytest.raises(InputError) as refused:
        read_manifest(path)
    assert "semester.yaml:1" in str(refused.value) and "max_creations" in str(refused.value)
