"""Registry journals as runs, kill -9 and careless hands leave them: shared by the tests that
compare a fast path with the slow one (``test_column_paths``, ``test_index_snapshots``)."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from kprov.state.registry import REGISTRATION_HEADER

STAMP = "2026-09-01T02:00:00Z"
ALG, BIO, OUTSIDE = (
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
    "33333333-3333-4333-8333-333333333333",  # made outside kprov: named by its id
)
PEOPLE = [f"p{n}" for n in range(40)]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hostile_state(seed: int, folder: Path) -> dict[str, str]:
    """A state directory as runs (and kill -9, and careless hands) leave it; returns the
    mapping (external id -> account id)."""
    rng = random.Random(seed)
    accounts = {ext: _uuid(rng) for ext in PEOPLE}
    mapping = [f"{ext},{a},{STAMP},,created" for ext, a in accounts.items() if ext != "p3"]
    mapping.append(f"p4,{accounts['p4']},{STAMP},,disabled")  # disabled since registered
    folder.mkdir()
    (folder / "mapping.csv").write_text(
        "external_user_id,account_id,created_at,sis_id,status\n" + "\n".join(mapping) + "\n"
    )
    (folder / "instances.csv").write_text(
        "key,instance_id,graph_id,name,start_date,end_date,created_at,status\n"
        f"alg,{ALG},g,Algebra,,,{STAMP},created\nbio,{BIO},g,Biology,,,{STAMP},created\n"
    )
    rows = [",".join(REGISTRATION_HEADER)]
    for _ in range(260):
        ext = rng.choice(PEOPLE)
        account, instance = accounts[ext], rng.choice([ALG, ALG, BIO, OUTSIDE])
        kind = "instructor" if rng.random() < 0.15 else "learner"
        rid = _uuid(rng)
        odd = rng.random()
        if odd < 0.04:
            account = account.upper()  # a hand-edited row: another key than the lower one
        elif odd < 0.06:
            instance = instance.upper()
        elif odd < 0.08:
            rid = rid.upper()
        elif odd < 0.09:
            ext = "ghost"  # a registry row naming someone the mapping does not hold
        elif odd < 0.10:
            account, ext = "acct-not-a-uuid", "odd"
        rows.append(f"{account},{instance},{kind},,{ext},{STAMP},sent")
        fate = rng.random()
        if fate < 0.10:
            continue  # killed before the answer was recorded
        answer = "" if fate < 0.2 else rid  # confirmed without its id
        rows.append(f"{account},{instance},{kind},{answer},{ext},{STAMP},registered")
        later = rng.random()
        if later < 0.08:
            rows.append(f"{account},{instance},{kind},{answer},{ext},{STAMP},removed")
        elif later < 0.12:
            rows.append(f"{account},{instance},{kind},{answer},{ext},{STAMP},forgotten")
        elif later < 0.18 and not answer:
            rows.append(f"{account},{instance},{kind},,{ext},{STAMP},noted")
        elif later < 0.22:  # registered again under another id (a role change, by hand)
            other = "learner" if kind == "instructor" else "instructor"
            rows.append(f"{account},{instance},{other},{_uuid(rng)},{ext},{STAMP},registered")
    (folder / "registrations.csv").write_text("\n".join(rows) + "\n")
    return accounts
