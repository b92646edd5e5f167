"""Linear growth: the same semester shape at 5,000, 20,000 and 50,000 users.

Each size is one `kprov sync` (classes of 1 instructor + 249 learners, so every class stays
under the API's 500 registrations) against a sandbox with no rate limit and no latency, so
the figure is kprov's own cost per user, not the server's limit. Growth is linear when the
cost per user at 50,000 is within 20 % of the cost at 5,000 (bar: ratio <= 1.2), and the
second night (nothing to do) stays a plan: no write request, seconds at 50,000.

Prints one line per size and a verdict line.

    python bench/scale.py [--sizes 5000,20000,50000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import kprov_environment, run_kprov, sandbox_process
from semester import WRITES, write_semester

LEARNERS = 249  # + 1 instructor = 250 users a class


def measure(users: int, concurrency: int) -> tuple[float, float, int]:
    """(wall of the first night, wall of the second, writes of the second)."""
    classes = max(1, users // (LEARNERS + 1))
    with (
        sandbox_process() as box,
        kprov_environment(box) as env,
        tempfile.TemporaryDirectory() as scratch,
    ):
        manifest = write_semester(Path(scratch), classes, LEARNERS)
        wall, summary, code = run_kprov(env, "sync", str(manifest), "-c", str(concurrency))
        if code != 0:
            raise SystemExit(f"sync of {users} users failed: {summary}")
        before = box.stats()
        again, second, code2 = run_kprov(env, "sync", str(manifest))
        after = box.stats()
        writes = sum(after.get(k, 0) - before.get(k, 0) for k in WRITES)
        if code2 != 0:
            raise SystemExit(f"second night of {users} users failed: {second}")
    return wall, again, writes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="5000,20000,50000")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    per_user: list[float] = []
    for users in sizes:
        wall, again, writes = measure(users, args.concurrency)
        per_user.append(wall / users)
        print(
            f"scale users={users}: first night {wall:.1f}s ({1000 * wall / users:.2f} ms/user), "
            f"second night {again:.2f}s, writes={writes}"
        )
    ratio = per_user[-1] / per_user[0]
    verdict = "met" if ratio <= 1.2 else "not met"
    print(f"scale: cost per user at {sizes[-1]} / at {sizes[0]} = {ratio:.2f} (bar 1.2: {verdict})")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
