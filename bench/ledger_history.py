"""The run ledger over a school year: recording a night, and `history --person`, at day 1 and
at day 365 of a 50,000-person district synced nightly with 1 % churn.

Day 1 records the first sync (every account, class and registration: ~150,000 items); each
later night records the churn (500 people moving class, leaving or joining: ~1,000 items),
through the same code a run uses (``provision.recording.RunRecording``: one transaction for
the start and items, outcomes in groups, the end and retention). Also times one run of
10,000 items. Each night also does what the source guard asks of the ledger: it reads the
reference of each class's roster (one source a class: 3,200 at 50,000 people) before
planning, and writes their fingerprints with the run's end (the classes the churn touched
changed, the others as last night); its recorded time includes both.
Prints one line.

    python bench/ledger_history.py [--people 50000] [--days 365] [--churn 0.01]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kprov.provision.plan import MOVED, Action, InstanceSpec, Item, Plan
from kprov.provision.recording import RunRecording
from kprov.provision.result import Outcome, Status
from kprov.provision.run_record import item_rows, run_start
from kprov.rosters.model import Origin
from kprov.state import ledger_queries as queries
from kprov.state.ledger import Ledger
from kprov.state.ledger_guards import RunGuards, reference_rows, write_run_guards

DAY = 86_400.0
T0 = 1_788_220_800.0  # 2026-09-01 02:00 UTC: the first night
CLASS_SIZE = 30


Sources = dict[str, int]  # a class's roster -> a number that changes when its class does


def record(
    state: Path, run_id: str, at: float, items: list[Item], sources: Sources | None = None
) -> float:
    """Seconds to record one run of *items* as a run does (start, items, outcomes, end),
    with the source guard's reads and writes of *sources*."""
    started = time.perf_counter()
    fingerprints = []
    if sources:
        ledger = Ledger.open(state)
        assert ledger is not None
        references = reference_rows(ledger, list(sources))
        ledger.close()
        assert len(references) in (0, len(sources))
        fingerprints = [
            (s, True, False, {"source": s, "ids": 30, "version": v}, list(range(v, v + 30)))
            for s, v in sources.items()
        ]
    recording = RunRecording(
        run_start(run_id, "sync", "apply", started_at=at, profile="district",
                  base_url="https://api.knewton.com/v0", argv=["sync", "semester.yaml"]),
        clock=lambda: at + 600,
    )  # fmt: skip
    plan = Plan("sync", tuple(items))
    recording.begin(state, [], rows=item_rows(plan, {}, {}))
    for seq, item in enumerate(items):
        recording.settled(seq, Outcome(item, Status.DONE, registration_id="r"))
    guards = RunGuards(run_id, "sync semester.yaml", fingerprints=fingerprints, now=at)
    recording.end(
        exit_code=0,
        counts={"registered": len(items)},
        history_days=400,
        also=write_run_guards(guards),
    )
    recording.close()
    return time.perf_counter() - started


def first_night(people: int) -> tuple[list[Item], dict[str, list[str]]]:
    learners = [f"s{n:06d}" for n in range(people - people // 25)]
    teachers = [f"t{n:05d}" for n in range(people // 25)]
    classes = [f"c{n:05d}" for n in range(2 * len(learners) // CLASS_SIZE)]
    items: list[Item] = []
    where = Origin("semester.yaml", 1)
    for key in classes:
        items.append(Item(Action.CREATE_INSTANCE, instance=key, spec=InstanceSpec("g", key)))
    for ext in (*teachers, *learners):
        items.append(Item(Action.CREATE_ACCOUNT, ext, origin=where, reason="not in the mapping"))
    enrolled: dict[str, list[str]] = {}
    for n, key in enumerate(classes):
        teacher = teachers[n % len(teachers)]
        items.append(Item(Action.REGISTER, teacher, "instructor", key, origin=where))
    for n, ext in enumerate(learners):
        mine = [classes[(2 * n) % len(classes)], classes[(2 * n + 1) % len(classes)]]
        enrolled[ext] = mine
        items.extend(
            Item(Action.REGISTER, ext, "learner", key, origin=Origin(f"{key}.csv", 2 + n % 30))
            for key in mine
        )
    return items, enrolled


def night(rng: random.Random, enrolled: dict[str, list[str]], churn: float, day: int) -> list[Item]:
    """500 people a night: 40 % move class, 30 % leave, 30 % join."""
    items: list[Item] = []
    classes = sorted({k for keys in enrolled.values() for k in keys})
    for ext in rng.sample(sorted(enrolled), int(len(enrolled) * churn)):
        kind = rng.random()
        old = enrolled[ext][0]
        if kind < 0.4:
            new = rng.choice(classes)
            words = f"moved {old} → {new}"
            items.append(Item(Action.UNREGISTER, ext, "learner", old, reason=words, change=MOVED))
            items.append(Item(Action.REGISTER, ext, "learner", new, reason=words, change=MOVED,
                              origin=Origin(f"{new}.csv", 9)))  # fmt: skip
            enrolled[ext][0] = new
        elif kind < 0.7:
            items.append(Item(Action.UNREGISTER, ext, "learner", old,
                              reason="no longer in the manifest"))  # fmt: skip
        else:
            joiner = f"j{day:03d}-{ext}"
            items.append(Item(Action.CREATE_ACCOUNT, joiner, origin=Origin("new.csv", 2)))
            items.append(Item(Action.REGISTER, joiner, "learner", old, origin=Origin("x.csv", 2)))
    return items


def person_query(state: Path, people: list[str]) -> float:
    """Median seconds of `history --person` (opening the ledger included, as the CLI does)."""
    times = []
    for ext in people:
        started = time.perf_counter()
        ledger = Ledger.open(state, create=False, migrate=False)
        assert ledger is not None
        events = queries.person_events(ledger, ext)
        ledger.close()
        times.append(time.perf_counter() - started)
        assert events
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    rng = random.Random(20260901)
    with tempfile.TemporaryDirectory() as folder:
        ten_k = Path(folder) / "ten-k"
        ten_k.mkdir()
        sample = [Item(Action.REGISTER, f"s{n}", "learner", "c1", origin=Origin("c1.csv", n))
                  for n in range(10_000)]  # fmt: skip
        record(ten_k, "kprov-warm", T0, sample[:10])
        ten_k_seconds = record(ten_k, "kprov-10k", T0 + 1, sample)

        state = Path(folder) / "district"
        state.mkdir()
        items, enrolled = first_night(args.people)
        sources = {f"{k}.csv": 0 for k in sorted({k for ks in enrolled.values() for k in ks})}
        day1 = record(state, "kprov-day001", T0, items, sources)
        probes = rng.sample(sorted(enrolled), 25)
        query1 = person_query(state, probes)
        last = second = 0.0
        total = len(items)
        for day in range(2, args.days + 1):
            churned = night(rng, enrolled, args.churn, day)
            total += len(churned)
            for item in churned:  # the rosters of the classes the churn touched changed
                if f"{item.instance}.csv" in sources:
                    sources[f"{item.instance}.csv"] = day
            last = record(state, f"kprov-day{day:03d}", T0 + (day - 1) * DAY, churned, sources)
            second = last if day == 2 else second
        query365 = person_query(state, probes)
        size = sum(p.stat().st_size for p in state.iterdir()) / 1e6
    print(
        f"ledger: 10,000-item run recorded in {ten_k_seconds:.2f} s; district of "
        f"{args.people:,} ({len(sources):,} class rosters): day 1 ({len(items):,} items) "
        f"recorded in {day1:.2f} s, --person {query1 * 1000:.1f} ms; day 2 recorded in "
        f"{second * 1000:.0f} ms; day {args.days} ({total:,} items kept, "
        f"{size:.0f} MB) night recorded in {last * 1000:.0f} ms, --person "
        f"{query365 * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
