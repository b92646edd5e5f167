"""Local state set by hand (mapped accounts, instances, registrations) and plans built on it,
for the planner's and the guards' tests."""

from __future__ import annotations

from kprov.provision.guards import GuardHistory, SourceReading
from kprov.provision.guards_grace import Absence
from kprov.provision.guards_sources import observe
from kprov.provision.plan import Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState
from kprov.state.mapping import MappingEntry
from kprov.state.registry import InstanceRecord, RegistrationRecord

ALG_ID = "11111111-1111-4111-8111-111111111111"


BIO_ID = "22222222-2222-4222-8222-222222222222"


def account(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def map_ids(state: LocalState, *ids: str) -> None:
    for n, ext in enumerate(ids, start=1):
        entry = MappingEntry(ext, account(n), "2026-01-01T00:00:00Z")
        state.journal.append([entry])
        state.mapping.apply(entry)


def add_instance(state: LocalState, key: str, instance_id: str) -> None:
    record = InstanceRecord(key, instance_id, "g", key.upper())
    state.registry.instances.record(record, state.registry.instance_index)


def add_registration(
    state: LocalState, ext: str, instance_id: str, role: str = "learner", reg_id: str = "r"
) -> None:
    account_id = state.mapping.account_of[ext]
    record = RegistrationRecord(account_id, instance_id, role, reg_id, ext)
    state.registry.registrations.record(record, state.registry.registration_index)


def plan(state: LocalState, **request: object) -> Plan:
    return build_plan(Request(**request), state.mapping, state.registry)  # type: ignore[arg-type]


ROSTER = "/srv/sis/alg.csv"


def people(ids: list[str], instance: str = "alg", file: str = ROSTER) -> list[Person]:
    return [Person(i, "learner", Origin(file, n + 2), instance) for n, i in enumerate(ids)]


def district(state: LocalState, ids: list[str], others: tuple[str, ...] = ()) -> None:
    """*ids* learners of alg (taught by t1), all mapped and registered; *others* mapped."""
    map_ids(state, "t1", *ids, *others)
    add_instance(state, "alg", ALG_ID)
    add_registration(state, "t1", ALG_ID, "instructor", "r-t1")
    for n, ext in enumerate(ids):
        add_registration(state, ext, ALG_ID, reg_id=f"r-{n}")


def sync(state: LocalState, lines: list[Person], history: GuardHistory, **more: object) -> Plan:
    teacher = Person("t1", "instructor", Origin("/srv/sis/semester.yaml", 9), "alg")
    asked: dict[str, object] = {
        "command": "sync", "people": [teacher, *lines], "authoritative": frozenset({"alg"}),
        "instances": ("alg",), "prune": True, "max_removals": "100%",
        "reading": SourceReading(sources=(ROSTER,), instance_sources={"alg": (ROSTER,)}),
    }  # fmt: skip
    request = Request(**{**asked, **more})  # type: ignore[arg-type]
    return build_plan(request, state.mapping, state.registry, history)


def reference(ids: list[str]) -> GuardHistory:
    """The history of a night that applied *ids* from the roster."""
    seen = observe(people(ids), [ROSTER])
    return GuardHistory(references={ROSTER: seen[ROSTER].fingerprint})


def absent(ext: str, n: int, count: int, source: str = ROSTER, **more: object) -> Absence:
    return Absence(f"00000000-0000-4000-8000-{n:012d}", ALG_ID, ext, "alg", "learner", source,
                   count, **more)  # type: ignore[arg-type]  # fmt: skip
