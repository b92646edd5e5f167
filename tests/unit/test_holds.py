"""Holds: the executor sends nothing a guard withheld, the run exits 6 and saves them in the
ledger with its end; a hold survives the retention, supersedes, approves once; saved plans,
cursors and notifications carry what the guards decided."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.cli.output import exit_code_for
from kprov.errors import ExitCode, InputError
from kprov.provision.execute import Executor
from kprov.provision.guards import CREATIONS, GuardTrip, GuardVerdict
from kprov.provision.guards_grace import Absence, AbsenceUpdate
from kprov.provision.guards_sources import observe
from kprov.provision.holds import held_facts, hold_id_of, run_guards
from kprov.provision.plan import Action, Brake, InstanceSpec, Item, Plan
from kprov.provision.result import RunResult, run_fate
from kprov.provision.run_record import item_rows
from kprov.provision.saved_plan import load_plan, save_plan, saved_document
from kprov.rosters.model import Origin, Person
from kprov.state import ledger_guards as store
from kprov.state import ledger_schema
from kprov.state.ledger import Ledger, RunEnd, RunStart
from kprov.state.local import LocalState, open_local_state
from tests.fakes import FakeApi

NEW = InstanceSpec("g", "New")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "s", tmp_path / "s" / "mapping.csv") as local:
        yield local


def withheld_plan() -> Plan:
    """A new class whose creations a guard withheld; its instance is created."""

    def why(item: Item) -> Item:
        return item._replace(guard=CREATIONS, reason=f"withheld: past the limit; {item.reason}")

    items = (
        Item(Action.CREATE_INSTANCE, instance="new", spec=NEW, reason="not created yet"),
        why(Item(Action.CREATE_ACCOUNT, "t9", "instructor", "new", reason="not in the mapping")),
        why(Item(Action.CREATE_ACCOUNT, "n0", "learner", "new", reason="not in the mapping")),
        why(Item(Action.REGISTER, "t9", "instructor", "new", reason="not registered")),
        why(Item(Action.REGISTER, "n0", "learner", "new", reason="not registered")),
    )
    trip = GuardTrip(CREATIONS, "2 new accounts exceed the creation limit of 1", 4)
    return Plan(
        command="sync", items=items, guards=GuardVerdict(trips=(trip,)),
        sources=("/srv/sis/semester.yaml",), profile="p", base_url="https://a/v0",
    )  # fmt: skip


def test_the_executor_sends_nothing_a_guard_withheld_and_the_run_exits_6(
    state: LocalState,
) -> None:
    api = FakeApi()
    result = Executor(api, state).run(withheld_plan())
    assert [run_fate(o) for o in result.outcomes] == ["instance_created", *["withheld"] * 4]
    assert api.accounts == {} and result.withheld == 4
    assert exit_code_for(result=result) is ExitCode.SAFETY_LIMIT
    assert [o.detail for o in result.outcomes][1].startswith("withheld: past the limit")


def test_a_hold_is_saved_with_the_runs_end_and_survives_the_retention(
    state: LocalState, tmp_path: Path
) -> None:
    plan = withheld_plan()
    result = Executor(FakeApi(), state).run(plan)
    ledger = Ledger.open(tmp_path / "s")
    assert ledger is not None
    old = time.time() - 500 * 86_400
    start = RunStart("kprov-aaaaaaaaaaaa", "sync", "apply", old, job="sync /srv/sis/semester.yaml")
    ledger.begin_run(start, (), item_rows(plan, {}, {}))
    facts = (
        "sha256:state",
        held_facts([o.item for o in result.outcomes if o.item.guard], state.mapping,
                   state.registry),
    )  # fmt: skip
    guards = run_guards(plan, result, run_id=start.run_id, job=start.job, profile="p",
                        base_url="https://a/v0", facts=facts, cursors={}, now=old)  # fmt: skip
    ledger.end_run(start.run_id, RunEnd(old, 6), also=store.write_run_guards(guards))
    hold = store.find_hold(ledger, "aaaa")
    assert hold["hold_id"] == hold_id_of(start.run_id) == "hold-aaaaaaaaaaaa"
    assert (hold["state"], hold["items"], hold["job"]) == ("open", 4, start.job)
    assert [r["action"] for r in store.held_rows(ledger, hold)] == [
        "create_account", "create_account", "register", "register",
    ]  # fmt: skip
    assert ledger.prune(time.time()) == 0  # a year later: an open hold keeps its run
    later = RunStart("kprov-bbbbbbbbbbbb", "sync", "apply", time.time(), job=start.job)
    ledger.begin_run(later)
    rerun = run_guards(Plan("sync", ()), None, run_id=later.run_id, job=start.job, profile="p",
                       base_url="https://a/v0", facts=None, cursors={"src": "2026-01-01T00:00:00Z"},
                       now=time.time())  # fmt: skip
    ledger.end_run(later.run_id, RunEnd(time.time(), 0), also=store.write_run_guards(rerun))
    superseded = store.find_hold(ledger, hold["hold_id"])
    assert (superseded["state"], superseded["decided_run"]) == ("superseded", later.run_id)
    assert store.saved_cursor(ledger, "src") == "2026-01-01T00:00:00Z"
    assert ledger.prune(time.time() - 86_400) == 1  # decided: pruned with its run
    with pytest.raises(InputError, match="kprov holds list"):
        store.find_hold(ledger, hold["hold_id"])
    ledger.close()


def test_a_hold_is_approved_once(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    start = RunStart("kprov-cccccccccccc", "sync", "apply", time.time())
    ledger.begin_run(start)
    row = store.HoldRow("hold-c", "sync", "p", "u", time.time(), [], 1, "s", "i")
    write = store.write_run_guards(store.RunGuards(start.run_id, "job", row))
    ledger.end_run(start.run_id, RunEnd(time.time(), 6), also=write)
    approve = store.decide("hold-c", store.APPROVED, who="ops@h", now=1.0, run_id="kprov-d")
    ledger.begin_run(RunStart("kprov-d", "holds approve", "apply", time.time()), also=approve)
    with pytest.raises(InputError, match="no longer open"):
        ledger.begin_run(RunStart("kprov-e", "holds approve", "apply", time.time()), also=approve)
    assert store.find_hold(ledger, "hold-c")["decided_run"] == "kprov-d"
    assert [r["run_id"] for r in ledger.query("SELECT run_id FROM runs")] == [
        "kprov-cccccccccccc",
        "kprov-d",
    ]  # fmt: skip  (the refused approval left no run behind)
    ledger.close()


def test_a_ledger_of_schema_1_is_upgraded_with_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    ledger_schema.MIGRATIONS[0](db)
    db.execute("INSERT INTO runs (run_id, command, mode, started_at) VALUES ('kprov-1', "
               "'sync', 'apply', 1.0)")  # fmt: skip
    db.execute("PRAGMA application_id = 1802531446")
    db.execute("PRAGMA user_version = 1")
    db.execute("COMMIT")
    db.close()
    ledger = Ledger.open(tmp_path)
    assert ledger is not None and ledger.version() == ledger_schema.schema_version()
    assert ledger.query("SELECT run_id, job FROM runs") == [{"run_id": "kprov-1", "job": ""}]
    assert store.list_holds(ledger) == [] and store.absence_rows(ledger) == []
    ledger.close()


def test_a_saved_plan_keeps_what_the_guards_decided(tmp_path: Path) -> None:
    seen = observe([Person("s1", "learner", Origin("/r.csv", 2), "alg")], ["/r.csv"])
    absence = Absence("a", "i", "s2", "alg", "learner", "/r.csv", 1)
    verdict = GuardVerdict(
        trips=(GuardTrip(CREATIONS, "why", 4),),
        fingerprints=tuple(o.fingerprint for o in seen.values()),
        absences=AbsenceUpdate(frozenset({"i"}), frozenset({"/r.csv"}), (absence,)),
    )
    plan = withheld_plan()
    path = tmp_path / "plan.json"
    save_plan(Plan(**{**plan.__dict__, "guards": verdict}), path)
    loaded = load_plan(path)
    assert loaded.guards == verdict and loaded.items == plan.items
    document = json.loads(path.read_text())
    document["guards"]["absences"]["records"][0]["count"] = 9  # a hand edit
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match="edited or damaged"):
        load_plan(path)


def test_a_braked_plan_of_an_older_kprov_has_its_removals_withheld(tmp_path: Path) -> None:
    removal = Item(Action.UNREGISTER, "s1", "learner", "alg", "i", "a", "r-1", reason="gone")
    plan = Plan("sync", (removal,), brake=Brake(1, 0, 5, "0"), fingerprint="sha256:0")
    document = saved_document(plan)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    [loaded] = load_plan(path).items
    assert loaded.guard == "removals"


def test_the_legacy_cursor_file_is_read_until_the_ledger_has_a_cursor(tmp_path: Path) -> None:
    from kprov.sis.cursor import CURSOR_FILE, LedgerCursorStore

    (tmp_path / CURSOR_FILE).write_text(
        json.dumps({"version": 1, "cursors": {"k": "2026-01-01T00:00:00Z"}})
    )
    cursors = LedgerCursorStore(tmp_path)
    assert cursors.load("k") == "2026-01-01T00:00:00Z"  # no ledger yet
    cursors.save({"k": "2026-02-01T00:00:00Z"})
    assert cursors.load("k") == "2026-02-01T00:00:00Z"
    assert cursors.load("other") is None


def test_a_notification_names_the_new_hold_and_how_to_approve_it() -> None:
    from kprov.provision.run_summary import RunSummary, needs_notice, notification

    summary = RunSummary(
        run_id="kprov-1", command="sync", profile="p", api_host="https://a", os_user="ops",
        host="h", started_at=1.0, ended_at=2.0, exit_code=6, counts={"withheld": 42},
        hold_id="hold-1", guards=("creations: 21 new accounts exceed the creation limit",),
        resume="kprov sync s.yaml",
    )  # fmt: skip
    assert needs_notice(summary, "failure")
    document = notification(summary)
    assert document["hold_id"] == "hold-1" and document["approve"] == "kprov holds approve hold-1"
    assert "New hold hold-1: 42 item(s) withheld" in document["text"]
    assert "creations: 21 new accounts" in document["text"]
    assert "To rerun" not in document["text"]  # exit 6 is a decision to make, not a rerun


def test_a_result_without_guards_is_no_hold() -> None:
    empty = Plan("sync", ())
    record = run_guards(empty, RunResult(empty, "r"), run_id="r", job="", profile="",
                        base_url="", facts=None, cursors={}, now=0)  # fmt: skip
    assert record.hold is None


def test_a_rerun_resumes_the_creations_its_predecessor_allowed_and_never_sent(
    tmp_path: Path,
) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    job = "accounts import /srv/sis/r.csv"
    killed = RunStart("kprov-k", "accounts import", "apply", 1.0, job=job)
    items = (
        Item(Action.CREATE_ACCOUNT, "done", "learner"),
        Item(Action.CREATE_ACCOUNT, "untried", "learner"),
        Item(Action.CREATE_ACCOUNT, "held", "learner", guard=CREATIONS),
    )
    ledger.begin_run(killed, (), item_rows(Plan("accounts import", items), {}, {}))
    ledger.set_outcomes("kprov-k", [(0, "created", "", "a", "", "")])
    assert store.unfinished_creations(ledger, job) == ["untried"]  # killed before its end
    assert store.unfinished_creations(ledger, "sync /other.yaml") == []
    ledger.begin_run(RunStart("kprov-l", "accounts import", "apply", 2.0, job=job))
    assert store.unfinished_creations(ledger, job) == []  # the last run of the job counts
    ledger.close()
