"""Figure of the pacing issue: the documented quotas, enforced by the sandbox.

1,020 accounts (20 instances of 50 learners + 1 instructor) registered from one roster
against `kprov sandbox serve --knewton-limits`, the client pacing itself to the documented
quotas. Prints one line: wall time, the bound the quotas set, their ratio, and the 429 count.

Bound: accounts need ceil(1020 / 50) = 21 POST /batch calls at 90/min = 1.5/s -> 14.0 s;
each instance's 50 learners go under its own instructor's token at 375/min = 6.25/s -> 8.0 s,
the 20 instances in parallel. Bound = 14.0 + 8.0 = 22.0 s.

    python bench/knewton_limits.py [--instances 20] [--learners 50] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import kprov_environment, run_kprov, sandbox_process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    people = args.instances * (args.learners + 1)
    bound = math.ceil(people / 50) / 1.5 + args.learners / 6.25
    with (
        sandbox_process(
            "--knewton-limits", "--strict", "--latency-ms", str(args.latency_ms)
        ) as box,
        kprov_environment(box, rate_limits="documented") as env,
        tempfile.TemporaryDirectory() as scratch,
    ):
        rows = ["external_user_id,role,instance"]
        for c in range(args.instances):
            rows.append(f"kt-{c:03d},instructor,kl-{c:03d}")
            rows.extend(f"kl-{c:03d}-{i:03d},learner,kl-{c:03d}" for i in range(args.learners))
        roster = Path(scratch) / "roster.csv"
        roster.write_text("\n".join(rows) + "\n", encoding="utf-8")
        wall, summary, code = run_kprov(
            env,
            "register",
            str(roster),
            "--graph-id",
            "gref-b",
            "--concurrency",
            str(args.concurrency),
        )
        stats = box.stats()
    ok = code == 0 and summary.get("registered") == people
    print(
        f"knewton_limits people={people} instances={args.instances} "
        f"latency_ms={args.latency_ms:g}: wall={wall:.1f}s bound={bound:.1f}s "
        f"ratio={wall / bound:.2f} server_429s={stats.get('429', 0)} "
        f"client_429s={summary.get('rate_limited')} requests={summary.get('requests')} "
        f"{'ok' if ok else f'FAILED exit={code} {summary}'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
