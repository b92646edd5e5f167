"""The source guard's cost on a 1,000,000-row roster (issue 20, docs/holds.md): what a run
adds to the plan to fingerprint a source (its ids gathered, hashed, sampled, shaped) and to
judge it against last night's, best of three, and the memory that adds at its peak
(tracemalloc, in a separate pass: tracing slows the timing). Bar: the P3 plan (10 s,
600 MiB) keeps its margin; the fingerprint kept in the ledger stays a few KB.

    python bench/source_fingerprint.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc

from kprov.provision.guards_judge import Thresholds, judge
from kprov.provision.guards_sources import observe
from kprov.rosters.model import Origin, Person

SOURCE = "/srv/sis/roster.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    people = [
        Person(f"{n:09d}", "learner", Origin(SOURCE, n + 2), f"c{n % 2000}")
        for n in range(args.rows)
    ]
    before = observe(people, [SOURCE])[SOURCE].fingerprint
    known: dict[str, str] = {}
    gc.collect()
    gc.freeze()  # as the CLI does after reading a large roster
    times = []
    for _ in range(3):
        started = time.perf_counter()
        tonight = observe(people, [SOURCE])[SOURCE]
        verdict = judge(before, tonight, known, Thresholds())
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    observe(people, [SOURCE])
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stored = len(json.dumps(tonight.fingerprint.to_json())) + 4 * len(tonight.fingerprint.sample)
    print(
        f"source_fingerprint rows={args.rows}: best={min(times):.2f}s "
        f"(runs {', '.join(f'{t:.2f}' for t in times)}) added_peak={peak / 2**20:.0f}MiB "
        f"stored={stored / 1024:.1f}KB held={verdict.held}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
