"""Instance intents survive kill -9 and warn until settled; unresolved registrations can be
listed, noted once, resolved or forgotten; the mapping has its own lock."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from kprov.errors import LockHeldError
from kprov.state.local import open_local_state
from kprov.state.lock import StateLock
from kprov.state.mapping import MappingEntry
from kprov.state.registry import (
    FORGOTTEN,
    NOTED,
    IdHeldElsewhere,
    InstanceRecord,
    RegistrationRecord,
    Registry,
)

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "0b8e1f3c-1111-4222-8333-444455556666"
INSTANCE = "307b072c-6194-46fa-b226-68d40cee521f"
REG_ID = "d0effd52-c3a7-4a3c-827a-3ac5eaa049a1"


def state_of(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state", tmp_path / "state" / "mapping.csv"


def test_an_intent_left_by_kill_9_warns_until_created(tmp_path: Path) -> None:
    state, mapping = state_of(tmp_path)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, signal
                from pathlib import Path
                from kprov.state.local import open_local_state
                with open_local_state(Path({str(state)!r}), Path({str(mapping)!r})) as local:
                    local.registry.record_instance_intent(
                        "alg1-p3", "gref-algebra", "Algebra I P3", "2026-09-01", "2027-06-30"
                    )
                    os.kill(os.getpid(), signal.SIGKILL)  # before the create request's answer
                """
            ),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    for _ in range(2):  # every load says so until a record settles it
        with open_local_state(state, mapping) as local:
            [warning] = local.warnings
            assert "'alg1-p3'" in warning and "Algebra I P3" in warning
            assert "empty duplicate" in warning and "gref-algebra" in warning
            intent = local.registry.instance_index.intents["alg1-p3"]
            assert intent.created_at.startswith("20") and intent.created_at in warning
            assert local.registry.instance_index.find("alg1-p3") is None
    with open_local_state(state, mapping) as local:  # the rerun creates it for real
        local.registry.record_instance_intent("alg1-p3", "gref-algebra", "Algebra I P3")
        local.registry.record_instance(
            InstanceRecord("alg1-p3", INSTANCE, "gref-algebra", "Algebra I P3", created_at="t")
        )
    with open_local_state(state, mapping) as local:
        assert local.warnings == []
        found = local.registry.instance_index.find("alg1-p3")
        assert found is not None and found.instance_id == INSTANCE


def test_an_abandoned_intent_stops_warning(tmp_path: Path) -> None:
    state, mapping = state_of(tmp_path)
    with open_local_state(state, mapping) as local:
        local.registry.record_instance_intent("k", "bad-graph", "X")
        local.registry.record_instance_abandoned("k")  # the server refused: nothing created
        local.registry.record_instance_abandoned("never-intended")  # a no-op
    with open_local_state(state, mapping) as local:
        assert local.warnings == [] and local.registry.instance_index.intents == {}


def unresolved_state(tmp_path: Path) -> tuple[Path, Path]:
    state, mapping = state_of(tmp_path)
    with open_local_state(state, mapping) as local:
        local.journal.append(  # registrations are of mapped accounts (a lost mapping is refused)
            [MappingEntry("stu-1", ACCOUNT, "t"), MappingEntry("stu-2", "1" + ACCOUNT[1:], "t")]
        )
        local.registry.record_instance(
            InstanceRecord("alg1-p3", INSTANCE, "g", "Algebra", created_at="t")
        )
        local.registry.record_registration(
            RegistrationRecord(ACCOUNT, INSTANCE, "learner", "", "stu-1", "t")
        )
        local.registry.record_registration(
            RegistrationRecord("1" + ACCOUNT[1:], INSTANCE, "learner", REG_ID, "stu-2", "t")
        )
    return state, mapping


def test_an_id_held_by_another_record_is_never_recorded_again(tmp_path: Path) -> None:
    """One server id, one record, whatever run recorded it first and whatever its case."""
    state, mapping = state_of(tmp_path)
    other = "5a6b7c8d-1111-4222-8333-444455556666"
    with open_local_state(state, mapping) as local:
        registry = local.registry
        mine = RegistrationRecord(ACCOUNT, INSTANCE, "instructor", REG_ID, "t-1")
        registry.record_registration(mine)
        registry.record_registration(mine)  # the same registration again: fine
        with pytest.raises(IdHeldElsewhere, match="t-1 as instructor"):
            registry.record_registration(
                RegistrationRecord(other, INSTANCE, "learner", REG_ID.upper(), "s-2")
            )
        registry.record_instance(InstanceRecord("alg", INSTANCE, "g", "Algebra"))
        with pytest.raises(IdHeldElsewhere, match="'alg'"):
            registry.record_instance(InstanceRecord("geo", INSTANCE, "g", "Geometry"))
    again = Registry.open(state)
    assert again.registration_index.holder_of(REG_ID).external_user_id == "t-1"  # type: ignore[union-attr]
    assert [r.external_user_id for r in again.registration_index.active.values()] == ["t-1"]
    assert again.instance_index.find("geo") is None
    assert sum(1 for _ in (state / "registrations.csv").open()) == 3  # header + 2 rows of t-1


def test_unresolved_registrations_are_listed_then_noted_once(tmp_path: Path) -> None:
    state, mapping = unresolved_state(tmp_path)
    registry = Registry.open(state)
    [pending] = registry.registration_index.unresolved(include_noted=False)
    assert pending.external_user_id == "stu-1" and not pending.noted
    with open_local_state(state, mapping) as local:
        untold = local.registry.registration_index.unresolved(include_noted=False)
        local.registry.note_unresolved(untold)
        local.registry.note_unresolved(local.registry.registration_index.unresolved())  # no-op
    registry = Registry.open(state)
    assert registry.registration_index.unresolved(include_noted=False) == []
    [noted] = registry.registration_index.unresolved()
    assert noted.noted and noted.status == NOTED
    assert len(list(registry.registration_index.in_instance(INSTANCE))) == 2  # still active
    rows = (state / "registrations.csv").read_text().splitlines()
    assert sum(row.endswith(",noted") for row in rows) == 1


def test_resolving_attaches_the_id_and_forgetting_drops_it(tmp_path: Path) -> None:
    state, mapping = unresolved_state(tmp_path)
    with open_local_state(state, mapping) as local:
        [record] = local.registry.registration_index.unresolved()
        local.registry.resolve_registration(record, REG_ID)
    registry = Registry.open(state)
    assert registry.registration_index.unresolved() == []
    resolved = registry.registration_index.active[(ACCOUNT, INSTANCE)]
    assert resolved.registration_id == REG_ID and not resolved.noted
    with open_local_state(state, mapping) as local:
        local.registry.forget_registration(resolved)
    registry = Registry.open(state)
    assert (ACCOUNT, INSTANCE) not in registry.registration_index.active
    assert (state / "registrations.csv").read_text().rstrip().endswith(FORGOTTEN)


def _hold(state: str, mapping: str, ready: Event, done: Event) -> None:
    with StateLock(Path(state), mapping_path=Path(mapping), command="kprov sync"):
        ready.set()
        done.wait(10)


def test_two_state_dirs_cannot_write_one_mapping_at_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "mapping.csv"
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(
        target=_hold, args=(str(tmp_path / "night"), str(shared), ready, done)
    )
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(LockHeldError) as caught,
            open_local_state(tmp_path / "manual", shared),
        ):
            pass
        message = str(caught.value)
        assert caught.value.exit_code == 5
        assert f"the mapping file {shared} is locked by kprov pid {holder.pid}" in message
        assert "kprov sync" in message and str(tmp_path / "night") in message
        with open_local_state(tmp_path / "manual", tmp_path / "manual" / "own.csv"):
            pass  # another mapping is free
    finally:
        done.set()
        holder.join(10)
    with open_local_state(tmp_path / "manual", shared):
        pass  # free once the holder is gone
    assert not list((tmp_path / "manual").glob("*.json"))


def test_the_lock_waits_up_to_its_timeout(tmp_path: Path) -> None:
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(
        target=_hold, args=(str(tmp_path / "s"), str(tmp_path / "s" / "m.csv"), ready, done)
    )
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(LockHeldError, match=r"after waiting 0\.1 s"),
            StateLock(tmp_path / "s", timeout=0.1),
        ):
            pass
    finally:
        done.set()
        holder.join(10)


def test_instance_names_that_would_start_a_formula_are_safe_in_the_journal(
    tmp_path: Path,
) -> None:
    """Adversary, round three: a manifest `name:` or a OneRoster class title such as
    =HYPERLINK(...) (names may start with anything; ids may not) was written raw into
    instances.csv, which an administrator opens in a spreadsheet. It is written with a
    leading ' and read back exactly, as is a name that itself starts with '."""
    import csv

    names = ['=HYPERLINK("http://evil","x")', "@Home learning", "'quoted", "-2+3", "-1", "Art"]
    state, mapping = state_of(tmp_path)
    with open_local_state(state, mapping) as local:
        for n, name in enumerate(names):
            instance = f"307b072c-6194-46fa-b226-68d40cee52{n:02d}"
            local.registry.record_instance(InstanceRecord(f"k{n}", instance, "g", name))
    with (state / "instances.csv").open(encoding="utf-8", newline="") as handle:
        cells = [row[3] for row in csv.reader(handle)][1:]
    assert cells == ['\'=HYPERLINK("http://evil","x")', "'@Home learning", "''quoted", "'-2+3",
                     "-1", "Art"]  # fmt: skip
    with open_local_state(state, mapping) as local:
        by_key = local.registry.instance_index.by_key
        assert [by_key[f"k{n}"].name for n in range(len(names))] == names


def test_an_already_registered_without_its_id_keeps_the_id_kprov_holds(tmp_path: Path) -> None:
    """The same registration asked twice in one run (a roster naming one class by its key on
    one line and by its id on another): the first answer gives its id, the second "already
    registered as learner" without one. Recorded as it came, the second replaced the first:
    the id was lost for ever (unresolved: never removable)."""
    state, mapping = state_of(tmp_path)
    with open_local_state(state, mapping) as local:
        registry = local.registry
        registry.record_registration(RegistrationRecord(ACCOUNT, INSTANCE, "learner", REG_ID, "s"))
        registry.record_registration(RegistrationRecord(ACCOUNT, INSTANCE, "learner", "", "s"))
        assert registry.registration_index.active[(ACCOUNT, INSTANCE)].registration_id == REG_ID
        registry.record_registration(  # another type without an id is another registration
            RegistrationRecord(ACCOUNT, INSTANCE, "instructor", "", "s")
        )
        assert registry.registration_index.active[(ACCOUNT, INSTANCE)].registration_id == ""
    again = Registry.open(state).registration_index
    assert again.active[(ACCOUNT, INSTANCE)].type == "instructor" and not again.by_id


def test_removing_a_registration_kprov_replaced_keeps_the_one_that_replaced_it(
    tmp_path: Path,
) -> None:
    """A role change's removal answered after its new registration was recorded (two pairs
    for one registration, or a resend): the removal of the old id must not drop the new one
    from local state (it stays on the server, its id lost to kprov)."""
    state, mapping = state_of(tmp_path)
    new_id = "5a6b7c8d-1111-4222-8333-444455556666"
    old = RegistrationRecord(ACCOUNT, INSTANCE, "learner", REG_ID, "s")
    with open_local_state(state, mapping) as local:
        registry = local.registry
        registry.record_registration(old)
        registry.record_registration(old._replace(type="instructor", registration_id=new_id))
        registry.record_registration_removed(old)  # the old id: removed, or "not found"
        assert registry.registration_index.holder_of(new_id) is not None
        unresolved = old._replace(type="instructor", registration_id="")  # its id unknown
        registry.registrations.record(unresolved, registry.registration_index)
        registry.record_registration_removed(old)  # another type: another registration
        assert registry.registration_index.active[(ACCOUNT, INSTANCE)].type == "instructor"
        registry.record_registration(old._replace(type="instructor", registration_id=new_id))
    again = Registry.open(state).registration_index
    assert again.active[(ACCOUNT, INSTANCE)].registration_id == new_id
