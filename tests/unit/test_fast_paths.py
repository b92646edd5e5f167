"""Issue 24's fast paths give exactly what the slow ones give: people made at positions and
ids by file run (columns, not ``Person`` objects), an import's new accounts planned in one
loop, run fates counted once, and outcomes written by the ledger's own writer thread."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.errors import ConfigError, InputError, StorageError
from kprov.provision.guards import NO_HISTORY
from kprov.provision.guards_sources import observe
from kprov.provision.limits import check_entity_limits
from kprov.provision.plan import Action, Item, Plan
from kprov.provision.planner import _Planner
from kprov.provision.recording import RunRecording
from kprov.provision.request import Request
from kprov.provision.result import Outcome, RunResult, Status, run_fate
from kprov.rosters.model import Origin, Person
from kprov.rosters.people import CHUNK, People
from kprov.rosters.people_columns import people_at
from kprov.state.ledger import Ledger, RunStart
from kprov.state.local import LocalState, open_local_state
from kprov.state.mapping import MappingEntry
from kprov.state.rebuild import refuse_a_foreign_mapping
from kprov.state.registry import RegistrationRecord
from tests.planning import ALG_ID, BIO_ID, account


def mixed_people(seed: int, rows: int = 2 * CHUNK + 33) -> tuple[list[Person], People]:
    """People from three files in runs (a file read twice), odd ids, sis ids, instances."""
    rng = random.Random(seed)
    given: list[Person] = []
    files = ["a.csv", "b.csv", "a.csv", "c.csv"]
    for i in range(rows):
        given.append(
            Person(
                f"id{i % (rows // 2)}" if i % 89 else f"odd\nid{i}",
                rng.choice(["learner", "instructor"]),
                Origin(files[min(3, i * 4 // rows)], i + 2),
                rng.choice([None, "alg", "bio"]) if i > CHUNK else None,
                f"SIS-{i}" if i % 301 == 0 else None,
                i % 777 == 5,
            )
        )
    return given, People(given)


@pytest.mark.parametrize("seed", [1, 2])
def test_people_at_positions_are_the_people_indexed_one_by_one(seed: int) -> None:
    given, people = mixed_people(seed)
    rng = random.Random(seed)
    at = [*sorted(rng.sample(range(len(given)), 900)), len(given) - 1]
    assert list(people_at(people, at)) == [given[p] for p in at]
    assert list(people_at(given, at)) == [given[p] for p in at]  # a plain list too
    assert list(people.at_positions(range(len(given)))) == given
    with pytest.raises(IndexError):
        list(people.at_positions([len(given)]))
    with pytest.raises(ValueError):
        list(people.at_positions([CHUNK + 5, 3]))  # a file run already passed


def test_file_ranges_give_each_files_rows_and_their_ids_by_column() -> None:
    given, people = mixed_people(3)
    runs = list(people.file_ranges())
    assert [f for f, _s, _e, _sis in runs] == ["a.csv", "b.csv", "a.csv", "c.csv"]
    assert [n for _f, start, end, _sis in runs for n in range(start, end)] == list(
        range(len(given))
    )
    firsts = [n for n in range(len(given))
              if n == 0 or given[n].origin.file != given[n - 1].origin.file]  # fmt: skip
    assert [sis for _f, _s, _e, sis in runs] == [given[n].sis_id for n in firsts]
    assert list(People().file_ranges()) == [] and list(People().ids_between(0, 0)) == []
    for start, end in [(0, 0), (0, 1), (5, CHUNK + 7), (CHUNK, 2 * CHUNK), (17, len(given))]:
        assert list(people.ids_between(start, end)) == [p.external_id for p in given[start:end]]


@pytest.mark.parametrize("seed", [4, 5])
def test_the_source_fingerprint_of_people_by_column_is_that_of_the_same_people_listed(
    seed: int,
) -> None:
    given, people = mixed_people(seed, rows=3 * CHUNK)
    removals = [Person("gone-1", "learner", Origin("b.csv", 9)), Person("x", "learner",
                Origin("elsewhere.csv", 1))]  # fmt: skip
    sources = ["a.csv", "b.csv", "c.csv", "empty.csv"]
    assert observe(people, sources, removals=removals) == observe(
        list(given), sources, removals=removals
    )
    assert observe(People(), sources) == observe([], sources)  # nobody read tonight


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as local:
        yield local


def planner(state: LocalState, people: list[Person] | People, create: bool) -> _Planner:
    request = Request(command="accounts import", people=people, register=False,
                      create_accounts=create, default_instance="alg")  # fmt: skip
    return _Planner(request, state.mapping, state.registry, NO_HISTORY)


@pytest.mark.parametrize("create", [True, False])
def test_an_imports_new_accounts_are_planned_as_one_by_one(state: LocalState, create: bool) -> None:
    given, _people = mixed_people(6)
    given = [p for p in given if "\n" not in p.external_id]  # the readers refuse those
    entries = [MappingEntry(ext, account(n), "2026-01-01T00:00:00Z")
               for n, ext in enumerate(sorted({p.external_id for p in given[::3]}))]  # fmt: skip
    state.journal.append(entries)  # one fsync, not one an id
    for entry in entries:
        state.mapping.apply(entry)
    fast = planner(state, People(given), create)
    fast._accounts([])
    slow = planner(state, given, create)
    seen: set[str] = set()
    for person in given:  # the one-by-one path every other command takes
        slow._account_for(person, seen)
    assert fast.items == slow.items
    new = {p.external_id for p in given} - set(state.mapping.account_of)
    assert len(fast.items) == (len(new) if create else 0) and (not create or fast.items)
    kept = [p for p in given if p.external_id in state.mapping.account_of]
    assert list(fast.request.people.select(fast.kept_at["already_mapped"])) == kept  # type: ignore[attr-defined]


def test_run_fates_are_counted_once_and_again_when_the_outcomes_change() -> None:
    items = (Item(Action.CREATE_ACCOUNT, "a"), Item(Action.CREATE_ACCOUNT, "b"),
             Item(Action.REGISTER, "c", guard="source"))  # fmt: skip
    outcomes = [Outcome(items[0], Status.DONE), Outcome(items[1], Status.FAILED, "no"),
                Outcome(items[2], Status.HELD)]  # fmt: skip
    result = RunResult(plan=Plan(command="sync", items=items), run_id="r", outcomes=outcomes)
    assert result.fates() == [run_fate(o) for o in outcomes] == ["created", "failed", "withheld"]
    assert result.counts() == {"created": 1, "failed": 1, "withheld": 1}
    assert result.failures() == [outcomes[1]] and result.withheld == 1
    result.outcomes = outcomes[:1]  # replaced: counted again
    assert result.counts() == {"created": 1} and result.failures() == []
    result.outcomes.append(outcomes[1])  # grown: counted again
    assert result.counts() == {"created": 1, "failed": 1}


def start(run_id: str = "run-1") -> RunStart:
    return RunStart(run_id=run_id, command="accounts import", mode="run", started_at=1.0)


def outcomes_of(ledger: Ledger) -> list[tuple[int, str | None, str]]:
    return ledger.db.execute("SELECT seq, outcome, account_id FROM items ORDER BY seq").fetchall()


def test_outcome_groups_are_written_in_order_by_the_writer_and_all_before_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kprov.provision.recording.FLUSH_EVERY", 3)
    writers: set[str] = set()
    real = Ledger.set_outcomes

    def spy(self: Ledger, run_id: str, rows: object) -> None:
        writers.add(threading.current_thread().name)
        real(self, run_id, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "set_outcomes", spy)
    recording = RunRecording(start())
    rows = [(n, "create_account", f"p{n}", "", "", "", "", "", "", "", "r.csv", n + 2,
             "not in the mapping", "", None, 0, "") for n in range(10)]  # fmt: skip
    recording.begin(tmp_path, [], rows=rows)
    for n in range(10):
        item = Item(Action.CREATE_ACCOUNT, f"p{n}", reason="not in the mapping")
        recording.settled(n, Outcome(item, Status.DONE, account_id=f"acct-{n}"))
    recording.end(exit_code=0)
    assert recording.failure is None and recording._writer is None  # drained, let go
    assert any(name.startswith("kprov-ledger") for name in writers)  # not the dispatcher
    assert recording.ledger is not None
    assert outcomes_of(recording.ledger) == [(n, "created", f"acct-{n}") for n in range(10)]
    recording.close()


def test_a_group_the_writer_cannot_write_stops_the_recording_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kprov.provision.recording.FLUSH_EVERY", 2)
    calls: list[int] = []

    def refuse(self: Ledger, run_id: str, rows: list[object]) -> None:
        calls.append(len(rows))
        raise StorageError("disk full")

    monkeypatch.setattr(Ledger, "set_outcomes", refuse)
    recording = RunRecording(start())
    recording.begin(tmp_path, [], rows=[])
    for n in range(6):  # the settling thread never sees the failure raised
        recording.settled(n, Outcome(Item(Action.CREATE_ACCOUNT, f"p{n}"), Status.DONE))
    recording.flush()
    assert isinstance(recording.failure, StorageError) and calls[0] == 2
    assert sum(calls) < 6  # groups after the failure are not tried
    assert "could not record" in (recording.warning() or "")
    recording.close()


def test_entity_limits_counted_in_c_name_each_first_line_over_as_before() -> None:
    long_ref = "k" * 300
    lines = [(Person(f"p{n % 3}" if n < 1000 else "solo", "learner", Origin("r.csv", n + 2)),
              long_ref if n in (7, 9) else f"c{n}") for n in range(1600)]  # fmt: skip
    lines += [(Person("p0", "learner", Origin("s.csv", 5)), "other")]
    with pytest.raises(InputError) as refused:
        check_entity_limits(lines)
    said = [str(p) for p in refused.value.problems]
    assert len(said) == 2 and said[0].startswith("r.csv:9") and "300 characters" in said[0]
    assert said[1].startswith("r.csv:1502")  # the 501st line of solo (n = 1500)
    assert "'solo' would have 600 registrations" in said[1]  # p0 has 335: not said
    check_entity_limits(lines[10:400])  # nothing over: nothing said


@pytest.mark.parametrize(
    "registry_account",
    [
        "00000000-0000-4000-8000-000000000002",  # another person's account
        "00000000000040008000-000000000001---",  # the same digits, dashes elsewhere
        "00000000-0000-4000-8000-00000000000G",  # not a UUID at all
    ],
)
def test_a_foreign_mapping_is_refused_by_the_column_check_as_by_each_pair(
    state: LocalState, registry_account: str
) -> None:
    entries = [MappingEntry(f"p{n}", account(n), "2026-01-01T00:00:00Z") for n in (1, 2, 3)]
    state.journal.append(entries)
    for entry in entries:
        state.mapping.apply(entry)
    index = state.registry.registration_index
    for n in (2, 3):  # registered as the mapping says
        index.apply(RegistrationRecord(account(n), ALG_ID, "learner", f"r{n}", f"p{n}"))
    refuse_a_foreign_mapping(state.journal, state.mapping, state.registry)  # all the same
    index.apply(RegistrationRecord(registry_account, ALG_ID, "learner", "r1", "p1"))
    with pytest.raises(ConfigError, match="gives 1 people other accounts"):
        refuse_a_foreign_mapping(state.journal, state.mapping, state.registry)
    index.apply(RegistrationRecord(account(1).upper(), BIO_ID, "learner", "r9", "p1"))
    gone = RegistrationRecord(registry_account, ALG_ID, "learner", "r1", "p1", status="forgotten")
    index.apply(gone)
    refuse_a_foreign_mapping(state.journal, state.mapping, state.registry)  # case is no matter


@pytest.mark.parametrize(
    "ids",
    [
        ["0123", "s-001", "ABC", "12", "x", "_-.", "007b"],  # ASCII: letters by case
        ["0123", "élève-1", "学生7", "½", "²3", "s-001", "ǅ"],  # not: a character at a time
    ],
)
def test_the_shape_of_ids_counts_letters_and_zeros_as_one_by_one(ids: list[str]) -> None:
    shape = observe([Person(i, "learner", Origin("a.csv", 2)) for i in ids], ["a.csv"])
    got = next(iter(shape.values())).fingerprint.shape
    n = len(ids)
    assert got.letters == sum(1 for i in ids if any(c.isalpha() for c in i)) / n
    assert got.leading_zeros == sum(1 for i in ids if i[:1] == "0") / n
    assert (got.shortest, got.longest) == (min(map(len, ids)), max(map(len, ids)))


def test_a_batchs_results_are_the_tuples_their_keywords_make(tmp_path: Path) -> None:
    """create_accounts and read_batch_answer build their tuples positionally: the same
    fields, in the same order, as the classes' own constructors."""
    from kprov.api.batch import read_batch_answer
    from kprov.api.models import BatchItemResult
    from kprov.api.scrub import Scrubber
    from kprov.provision import tasks
    from kprov.provision.recorder import Recorder

    ids = ["a-1", "b-2"]
    made = ["0e4f9e5c-7c2b-4a8e-9d7e-1f0a2b3c4d5e", "1e4f9e5c-7c2b-4a8e-9d7e-1f0a2b3c4d5e"]
    payload = {
        "responses": [
            {"code": 201, "body": {"external_user_id": e, "account_id": a.upper()}}
            for e, a in zip(ids, made, strict=True)
        ]
    }
    answers = read_batch_answer(ids, payload, Scrubber())
    assert answers == [
        BatchItemResult(e, 201, account_id=a) for e, a in zip(ids, made, strict=True)
    ]
    assert all(type(a) is BatchItemResult for a in answers)

    class Api:
        def create_accounts(self, _ids: list[str]) -> list[BatchItemResult]:
            return answers

    items = [Item(Action.CREATE_ACCOUNT, e, sis_id=f"S{e}") for e in ids]
    with open_local_state(tmp_path / "s", tmp_path / "s" / "mapping.csv") as local:
        got = tasks.create_accounts(Api(), Recorder(local), list(enumerate(items)))  # type: ignore[arg-type]
        assert local.mapping.account_of == dict(zip(ids, made, strict=True))
    lines = (tmp_path / "s" / "mapping.csv").read_text().splitlines()[-2:]
    written = [(f[0], f[1], f[3], f[4]) for f in (line.split(",") for line in lines)]
    assert written == [(e, a, f"S{e}", "created") for e, a in zip(ids, made, strict=True)]
    assert got.settled == [
        (i, Outcome(item, Status.DONE, account_id=a))
        for i, (item, a) in enumerate(zip(items, made, strict=True))
    ]
    assert all(type(o) is Outcome for _i, o in got.settled)
