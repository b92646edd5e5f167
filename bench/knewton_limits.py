"""P5: the P1 semester under the documented per-token quotas, as one `kprov register`.

5,020 accounts (20 instances of 1 instructor + 250 learners) registered from one roster with
default settings (`--concurrency` 4, quota pacing to the documented table) against
`kprov sandbox serve --knewton-limits --strict --latency-ms 20`: every 429 there is
token-limited, without Retry-After, as the API documents.

The quota bound: the busiest bucket is the partner admin's POST /batch, 90 a minute, and
ceil(5,020 / 50) = 101 batches need two windows: the 91st cannot go before 60 s; one more
second for the last window's work -> 61 s. (Learners are registered under their own
instructor's token, 250 each against 375 a minute: one window.) Bar: wall <= 1.10 x the
bound, <= 10 429s.

Side by side, a naive serial script (one request at a time: POST /accounts per user, then
the registrations), computed rather than run (it would take ~8 minutes): its accounts need
ceil(5,020 / 750) windows of the admin's POST /accounts quota, and every request costs the
per-request time measured on a sample.

    python bench/knewton_limits.py [--instances 20] [--learners 250] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SANDBOX_KEY,
    SANDBOX_SECRET,
    kprov_environment,
    run_kprov,
    sandbox_process,
)

from kprov.api.client import KnewtonClient
from kprov.api.pacing import DOCUMENTED_QUOTAS, Pacer
from kprov.credentials import Secret

WINDOW = 60.0
BAR = 1.10


def quota_bound(people: int, learners_per_instance: int) -> float:
    """Seconds the documented quotas impose on the busiest bucket (+1 s for its last window)."""
    buckets = {
        "admin POST /batch": math.ceil(people / 50) / DOCUMENTED_QUOTAS["POST /batch"],
        "instructor POST /registrations": learners_per_instance
        / DOCUMENTED_QUOTAS["POST /registrations"],
    }
    windows = max(math.ceil(share) for share in buckets.values())
    return (windows - 1) * WINDOW + 1.0


def serial_seconds(base_url: str, people: int, instances: int, sample: int) -> float:
    """A naive serial script's time under the quotas: per-request time from a sample."""
    client = KnewtonClient(
        base_url=base_url,
        api_key=SANDBOX_KEY,
        api_secret=Secret(SANDBOX_SECRET),
        pool_size=1,
        pacer=Pacer(quotas=DOCUMENTED_QUOTAS),
    )
    client.token_for()
    started = time.monotonic()
    for i in range(sample):
        client.create_account(f"serial-{i:06d}")
    per_request = (time.monotonic() - started) / sample
    accounts = max(
        people * per_request,
        (math.ceil(people / DOCUMENTED_QUOTAS["POST /accounts"]) - 1) * WINDOW,
    )
    return accounts + (instances + people) * per_request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--learners", type=int, default=250)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--serial-sample", type=int, default=200)
    args = parser.parse_args()
    people = args.instances * (args.learners + 1)
    bound = quota_bound(people, args.learners)
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
        wall, summary, code = run_kprov(env, "register", str(roster), "--graph-id", "gref-b")
        stats = box.stats()
        serial = serial_seconds(box.base_url, people, args.instances, args.serial_sample)
    ok = code == 0 and summary.get("registered") == people
    ratio = wall / bound
    refused = stats.get("429", 0)
    met = ratio <= BAR and refused <= 10
    print(
        f"knewton_limits P5 people={people} instances={args.instances} "
        f"latency_ms={args.latency_ms:g} (default settings): wall={wall:.1f}s "
        f"bound={bound:.1f}s ratio={ratio:.2f} 429s={refused} "
        f"(bar {BAR}, <=10 429s: {'met' if met else 'NOT met'}) "
        f"requests={summary.get('requests')} | serial~{serial:.0f}s ratio={serial / bound:.1f} "
        f"(computed) kprov {serial / wall:.1f}x faster "
        f"{'ok' if ok else f'FAILED exit={code} {summary}'}",
        flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
