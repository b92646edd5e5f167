"""Figure of the accounts issue: 5,000 accounts at 20 ms latency and a 400 req/s limit.

Prints one line: wall time, the bound (batch calls / rate), their ratio, the serial baseline
(one POST /accounts per user, one at a time; measured on a sample and scaled, since it is
linear), the speed-up, and the rerun's time and batch count.

    python bench/accounts_import.py [--users 5000] [--concurrency 16] [--serial-sample 500]
"""

from __future__ import annotations

import argparse
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
    write_ids,
)

from kprov.api.client import KnewtonClient
from kprov.credentials import Secret


def serial_seconds(base_url: str, count: int) -> float:
    """A naive script: one POST /accounts per user, one request at a time."""
    client = KnewtonClient(
        base_url=base_url, api_key=SANDBOX_KEY, api_secret=Secret(SANDBOX_SECRET), pool_size=1
    )
    client.token_for()
    started = time.monotonic()
    for i in range(count):
        client.create_account(f"serial-{i:06d}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--serial-sample", type=int, default=500)
    args = parser.parse_args()
    with (
        sandbox_process(
            "--latency-ms", str(args.latency_ms), "--rate-limit", str(args.rate)
        ) as box,
        kprov_environment(box) as env,
        tempfile.TemporaryDirectory() as scratch,
    ):
        roster = write_ids(
            Path(scratch) / "roster.csv", [f"bench-{i:06d}" for i in range(args.users)]
        )
        wall, summary, code = run_kprov(
            env, "accounts", "import", str(roster), "--concurrency", str(args.concurrency)
        )
        if code != 0 or summary.get("created") != args.users:
            print(f"FAILED exit={code} summary={summary}")
            return 1
        batches = int(box.stats().get("POST /batch", 0))
        bound = batches / args.rate
        before = box.stats().get("POST /batch", 0)
        rerun_wall, _rerun, rerun_code = run_kprov(env, "accounts", "import", str(roster))
        rerun_batches = box.stats().get("POST /batch", 0) - before
        sample = serial_seconds(box.base_url, args.serial_sample)
        serial = sample * args.users / args.serial_sample
    print(
        f"accounts_import users={args.users} concurrency={args.concurrency} "
        f"latency_ms={args.latency_ms:g} rate={args.rate:g}/s: wall={wall:.2f}s "
        f"(engine {summary['seconds']}s) batches={batches} bound={bound:.2f}s "
        f"ratio_wall={wall / bound:.2f} ratio_engine={float(summary['seconds']) / bound:.2f} "  # type: ignore[arg-type]
        f"serial={serial:.1f}s (from {args.serial_sample}) speedup={serial / wall:.0f}x "
        f"rerun={rerun_wall:.2f}s rerun_batches={rerun_batches} rerun_exit={rerun_code}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
