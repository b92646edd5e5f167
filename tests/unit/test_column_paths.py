"""Issue 24's registrations by column give exactly what the one-by-one paths give: the
registry read a block at a time (records made when asked) against the registry read row by
row, and a plan whose lines are matched by column (``People``) against the same plan made
line by line (a list of ``Person``), on hostile states: requests without answers, ids
unknown or noted, removed and forgotten rows, role conflicts, upper-case ids, odd account
ids, people the mapping lost or disabled, a registry naming someone else."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from kprov.errors import ConfigError
from kprov.provision.guards import NO_HISTORY
from kprov.provision.plan import InstanceSpec, Plan
from kprov.provision.planner import _Planner, build_plan
from kprov.provision.request import Request
from kprov.rosters.model import Origin, Person
from kprov.rosters.people import People
from kprov.state import blocks
from kprov.state.local import open_local_state
from kprov.state.rebuild import unmapped_registrations
from kprov.state.registry import (
    REGISTRATION_HEADER,
    RegistrationIndex,
    RegistrationJournal,
    RegistrationRecord,
)
from kprov.state.registry_blocks import uuid_numbers
from tests.registry_journals import ALG, BIO, OUTSIDE, PEOPLE, STAMP, _uuid, hostile_state


def roster(seed: int, *, keyed: bool = True) -> list[Person]:
    rng = random.Random(seed * 7)
    lines = []
    for n in range(150):
        ext = rng.choice([*PEOPLE, "new-1", "new-2"])
        key = rng.choice(["alg", "alg", "bio", OUTSIDE, "chem"]) if keyed else None
        pick = rng.random()  # a role no reader gives, too: matched to no registration
        role = "instructor" if pick < 0.1 else "mentor" if pick < 0.12 else "learner"
        only = rng.random() < 0.03  # a OneRoster users.csv row: an account, no enrolment
        lines.append(Person(ext, role, Origin(f"r{n % 3}.csv", n + 2), key, None, only))
    return lines


def both_plans(folder: Path, lines: list[Person], **asked: object) -> tuple[Plan, Plan]:
    asked.setdefault("specs", {"chem": InstanceSpec("g", "Chemistry")})  # created first
    with open_local_state(folder, folder / "mapping.csv") as state:
        plans = []
        for people in (People(lines), list(lines)):
            request = Request(command="sync", people=people, **asked)  # type: ignore[arg-type]
            plans.append(build_plan(request, state.mapping, state.registry, NO_HISTORY))
    return plans[0], plans[1]


def same(fast: Plan, slow: Plan) -> None:
    assert fast.items == slow.items
    assert {k: list(v) for k, v in fast.kept.items()} == {k: list(v) for k, v in slow.kept.items()}
    assert (fast.warnings, fast.brake, fast.guards) == (slow.warnings, slow.brake, slow.guards)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("prune", [True, False])
def test_a_plan_by_column_is_the_plan_line_by_line(seed: int, prune: bool, tmp_path: Path) -> None:
    hostile_state(seed, tmp_path / "state")
    fast, slow = both_plans(
        tmp_path / "state", roster(seed), prune=prune, authoritative=frozenset({"alg", "bio"}),
        instances=("alg", "bio"), max_removals="100%",
    )  # fmt: skip
    same(fast, slow)
    assert fast.kept["already_registered"]  # the column path kept some lines itself


@pytest.mark.parametrize("create", [True, False])
def test_a_plan_by_column_with_one_instance_for_every_line(create: bool, tmp_path: Path) -> None:
    hostile_state(9, tmp_path / "state")
    fast, slow = both_plans(
        tmp_path / "state", roster(9, keyed=False), default_instance="alg",
        create_accounts=create, prune=True, authoritative=frozenset({"alg"}),
    )  # fmt: skip
    same(fast, slow)


def test_lines_the_column_path_cannot_judge_are_said_line_by_line(tmp_path: Path) -> None:
    hostile_state(3, tmp_path / "state")
    lines = roster(3)
    for broken in (
        [*lines, Person("p1", "learner", Origin("x.csv", 9), None)],  # no instance
        [Person("p1", "learner", Origin("x.csv", 2), "k" * 300)],  # a key too long
        [Person("p9", "learner", Origin("x.csv", n + 2), f"c{n}") for n in range(501)],
    ):
        said = []
        for people in (People(broken), list(broken)):
            with pytest.raises(Exception) as refused:
                both_plans(tmp_path / "state", list(people))
            said.append(str(refused.value))
        assert said[0] == said[1]
    with pytest.raises(Exception, match="--instance is given too"):
        both_plans(tmp_path / "state", lines, default_instance="alg")


def test_the_column_path_makes_no_person_for_a_line_registered_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_state(4, tmp_path / "state")  # p3: registered, and lost from the mapping
    lines = roster(4)
    made: list[int] = []
    real = _Planner._register_line

    def spy(self: _Planner, person: Person, ref: str, position: int) -> None:
        if isinstance(self.request.people, People):
            made.append(position)
        real(self, person, ref, position)

    monkeypatch.setattr(_Planner, "_register_line", spy)
    fast, _slow = both_plans(tmp_path / "state", lines)
    kept = set(fast.kept["already_registered"]._positions)  # type: ignore[attr-defined]
    assert len(kept) > 40 and len(made) < len(lines) - 40
    # a kept line made one by one is one the mapping lost (found by its external id)
    assert all(lines[at].external_id == "p3" for at in kept.intersection(made))


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, *, by_rows: bool) -> RegistrationIndex:
    monkeypatch.setattr(blocks, "BLOCK", 3000)  # blocks of a few lines: boundaries everywhere
    if by_rows:
        monkeypatch.setattr(blocks, "_plain", lambda lines, width: False)
    index = RegistrationJournal(path).load()
    monkeypatch.undo()
    return index


def applied_one_by_one(path: Path) -> RegistrationIndex:
    """Every row's record applied in turn to an index that keeps its requests as it goes
    (the reference: what the index held before it read anything by column)."""
    index = RegistrationIndex()
    with path.open(newline="") as journal:
        for row in list(csv.reader(journal))[1:]:
            account, instance, kind, registration, *rest = row
            record = (account.lower(), instance.lower(), kind, registration.lower(), *rest)
            index.apply(RegistrationRecord(*record))
    return index


@pytest.mark.parametrize("seed", range(6))
def test_the_registry_by_column_reads_back_as_row_by_row(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_state(seed, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    fast = _read(path, monkeypatch, by_rows=False)
    slow = _read(path, monkeypatch, by_rows=True)
    assert list(fast.active.items()) == list(slow.active.items())  # in the same order
    assert fast.unresolved(include_noted=False) == slow.unresolved(include_noted=False)
    assert fast.unresolved() == [r for r in slow.active.values() if r.unresolved]
    assert fast.instructors() == [r for r in slow.active.values() if r.type == "instructor"]
    for instance in (ALG, BIO, OUTSIDE, OUTSIDE.upper(), "nowhere"):
        assert list(fast.in_instance(instance)) == list(slow.in_instance(instance))
    reference = applied_one_by_one(path)
    monkeypatch.setattr(blocks, "BLOCK", 700)  # requests read again in blocks of a few lines
    assert fast.sent == slow.sent == reference.sent and fast.by_id == reference.by_id
    records = list(slow.active.values())
    per_instance, per_account = fast.counts()
    assert per_instance == Counter(r.instance_id for r in records)
    accounts = Counter(r.account_id for r in records)
    assert all(per_account[a] == n for a, n in accounts.items()) and per_account["new:x"] == 0
    for some in ({ALG}, {BIO, OUTSIDE.upper()}, {"nowhere"}):
        mine = [r for r in records if r.instance_id in some]
        assert fast.in_instances(some) == mine and fast.count_in(some) == len(mine)
    # then a run records more, on both: requests, answers that replace, ids given again
    rng = random.Random(seed)
    for record in rng.sample(list(slow.active.values()), 8):
        later = rng.choice([
            record._replace(status="removed"), record._replace(registration_id=""),
            record._replace(status="sent"), record._replace(type="instructor"),
            RegistrationRecord(_uuid(rng), ALG, "learner", record.registration_id, "x"),
        ])  # fmt: skip
        for index in (fast, slow, reference):
            index.apply(later)
        assert list(fast.active.items()) == list(reference.active.items())
        assert fast.by_id == slow.by_id == reference.by_id
        assert fast.sent == slow.sent == reference.sent


def test_ids_held_by_two_records_are_kept_as_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    a, b, rid = _uuid(rng), _uuid(rng), _uuid(rng)
    rows = [
        f"{a},{ALG},learner,{rid},p1,{STAMP},registered",  # one id given to two registrations
        f"{b},{ALG},learner,{rid},p2,{STAMP},registered",
        *(f"{_uuid(rng)},{BIO},learner,{_uuid(rng)},q{n},{STAMP},registered" for n in range(40)),
        f"{a},{ALG},learner,,p1,{STAMP},registered",  # a's record replaced: the id goes
    ]
    path = tmp_path / "registrations.csv"
    path.write_text(",".join(REGISTRATION_HEADER) + "\n" + "\n".join(rows) + "\n")
    fast = _read(path, monkeypatch, by_rows=False)
    slow = _read(path, monkeypatch, by_rows=True)
    assert rid not in slow.by_id  # what applying each row keeps, however odd
    assert fast.by_id == slow.by_id and list(fast.active.items()) == list(slow.active.items())


def test_unmapped_registrations_are_counted_by_column(tmp_path: Path) -> None:
    hostile_state(2, tmp_path / "state")
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as state:
        active = state.registry.registration_index.active.values()
        expected = {r.external_user_id for r in active} - set(state.mapping.account_of) - {""}
        assert unmapped_registrations(state.mapping, state.registry) == len(expected) > 0


@pytest.mark.parametrize(
    "damaged",
    [
        f",{'x' * 35},{'y' * 36},learner,p1,{STAMP},registered",  # no account, fields shifted
        f"{'a' * 36},{BIO},Learner,,p1,{STAMP},registered",  # a type in another case
        f"{'a' * 36},{BIO},learner,,p1,{STAMP},Registered",  # a status in another case
        f"{'a' * 36},,learner,,p1,{STAMP},sent",  # a request without its instance
    ],
)
def test_a_damaged_registry_row_is_named_as_row_by_row(
    damaged: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    rows = [f"{_uuid(rng)},{ALG},learner,{_uuid(rng)},q{n},{STAMP},registered" for n in range(60)]
    rows[40] = damaged
    path = tmp_path / "registrations.csv"
    path.write_text(",".join(REGISTRATION_HEADER) + "\n" + "\n".join(rows) + "\n")
    said = []
    for by_rows in (False, True):
        with pytest.raises(ConfigError) as refused:
            _read(path, monkeypatch, by_rows=by_rows)
        said.append(refused.value.message)
    assert said[0] == said[1] and f"{path}:42" in said[0]


def test_pending_requests_are_read_from_what_the_load_read_then_what_was_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_state(6, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    fast = _read(path, monkeypatch, by_rows=False)
    slow = _read(path, monkeypatch, by_rows=True)
    asked = RegistrationRecord(_uuid(random.Random(1)), BIO, "instructor", "", "z", STAMP, "sent")
    fast.apply(asked)  # recorded by this run: in the journal and in the index
    slow.apply(asked)
    with path.open("a") as journal:  # another thread's rows, the last half written
        journal.write(f"{asked.account_id},{BIO},instructor,r-9,z,{STAMP},registered\n")
        journal.write(f"{_uuid(random.Random(2))},{ALG},learner,,y,{STAMP},se")
    assert fast.sent == slow.sent and (asked.account_id, BIO) in fast.sent


def test_account_ids_are_numbers_only_when_each_is_a_uuid() -> None:
    rng = random.Random(11)
    ids = [_uuid(rng) for _ in range(50)] + ["f" * 8 + "-ffff-ffff-ffff-" + "f" * 12]
    numbers = [int(i.replace("-", ""), 16) for i in ids]
    assert uuid_numbers(ids) == numbers and uuid_numbers([i.upper() for i in ids]) == numbers
    moved = [ids[0][:-1], ids[0][-1] + ids[1], *ids[2:]]  # a digit moved to the next id
    for odd in (moved, [*ids[:3], ids[3][:-1] + "g"], [*ids[:3], ids[3][:-1] + " "]):
        assert uuid_numbers(odd) is None


@pytest.mark.parametrize("odd", ['"p, quoted"', "p-plain"])
def test_pending_requests_are_found_whatever_the_lines_hold(
    odd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(12)
    a, b, c = _uuid(rng), _uuid(rng), "acct-odd"
    rows = [
        f"{a},{ALG},learner,,{odd},{STAMP},sent",  # answered below
        f"{b.upper()},{ALG},instructor,,q,{STAMP},sent",  # never answered (kill -9)
        f"{a},{ALG},learner,{_uuid(rng)},{odd},{STAMP},registered",
        f"{c},{BIO},learner,,r,{STAMP},sent",  # an odd account, asked twice
        f"{c},{BIO},instructor,,r,{STAMP},sent",
        f"{a},{ALG},learner,,{odd},{STAMP},sent",  # asked again after its answer
    ]
    path = tmp_path / "registrations.csv"
    path.write_text(",".join(REGISTRATION_HEADER) + "\n" + "\n".join(rows) + "\n")
    fast = _read(path, monkeypatch, by_rows=False)
    slow = _read(path, monkeypatch, by_rows=True)
    expected = {(b, ALG): "instructor", (c, BIO): "instructor", (a, ALG): "learner"}
    monkeypatch.setattr(blocks, "BLOCK", 150)
    assert fast.sent == slow.sent == applied_one_by_one(path).sent == expected


@pytest.mark.parametrize("block", [150, 700, 1 << 22])
def test_pending_requests_answered_blocks_later_are_not_pending(
    block: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(block)
    pairs = [(_uuid(rng), rng.choice([ALG, BIO])) for _ in range(40)]
    rows = [f"{a},{i},learner,,p,{STAMP},sent" for a, i in pairs]  # a night's requests
    rows += [f"{a},{i},learner,{_uuid(rng)},p,{STAMP},registered" for a, i in pairs[:30]]
    rows += [f"{a.upper()},{i},instructor,,p,{STAMP},sent" for a, i in pairs[25:28]]  # again
    rows += [f"{a},{i},learner,,p,{STAMP},removed" for a, i in pairs[35:]]  # refused
    path = tmp_path / "registrations.csv"
    path.write_text(",".join(REGISTRATION_HEADER) + "\n" + "\n".join(rows) + "\n")
    fast = _read(path, monkeypatch, by_rows=False)
    monkeypatch.setattr(blocks, "BLOCK", block)
    expected = applied_one_by_one(path).sent
    assert fast.sent == expected and len(expected) == 5 + 3  # 30-35 unanswered, 25-28 again
