"""P1 and P2: a 5,000-account, 100-instance, 5,100-registration semester via `kprov sync`.

Against the sandbox at 20 ms latency and a 400 req/s limit. Prints one line:
- P1: wall time of the first night, the bound (requests the server saw / 400 per s) and their
  ratio (bar: <= 1.25), and the same work as a naive serial script (one request at a time,
  POST /accounts per user; measured on a sample and scaled, since it is linear);
- P2: the second night with nothing changed: its wall time (bar: < 2 s) and write requests
  (bar: 0).

    python bench/semester.py [--classes 100] [--learners 50] [--concurrency 16]
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
)

from kprov.api.client import KnewtonClient
from kprov.credentials import Secret

WRITES = (
    "POST /batch",
    "POST /accounts",
    "POST /learning-instances",
    "POST /registrations",
    "DELETE /registrations/{id}",
    "DELETE /accounts/{id}",
)


def write_semester(folder: Path, classes: int, learners: int) -> Path:
    lines = ["defaults:", "  graph_id: gref-bench", "instances:"]
    for c in range(classes):
        roster = folder / f"class-{c:03d}.csv"
        roster.write_text(
            "external_user_id\n" + "".join(f"b{c:03d}-{i:03d}\n" for i in range(learners))
        )
        lines += [
            f"  - key: class-{c:03d}",
            f"    name: Class {c:03d}",
            "    people:",
            f"      - instructors: [bt-{c:03d}]",
            f"      - roster: {roster.name}",
        ]
    manifest = folder / "semester.yaml"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def serial_seconds_per_request(base_url: str, sample: int) -> float:
    """A naive script: one request at a time (account, then instance, then registration)."""
    client = KnewtonClient(
        base_url=base_url, api_key=SANDBOX_KEY, api_secret=Secret(SANDBOX_SECRET), pool_size=1
    )
    instance = client.create_learning_instance(graph_id="g", name="serial")
    started = time.monotonic()
    for i in range(sample // 2):
        account = client.create_account(f"serial-{i:06d}")
        client.create_registration(
            registration_type="instructor", account_id=account.id, learning_instance_id=instance.id
        )
    return (time.monotonic() - started) / (2 * (sample // 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--serial-sample", type=int, default=300)
    args = parser.parse_args()
    with (
        sandbox_process(
            "--latency-ms", str(args.latency_ms), "--rate-limit", str(args.rate)
        ) as box,
        kprov_environment(box) as env,
        tempfile.TemporaryDirectory() as scratch,
    ):
        manifest = write_semester(Path(scratch), args.classes, args.learners)
        wall, summary, code = run_kprov(
            env, "sync", str(manifest), "--concurrency", str(args.concurrency)
        )
        first = box.stats()
        requests = sum(n for k, n in first.items() if k != "429")
        bound = requests / args.rate
        wall2, summary2, code2 = run_kprov(env, "sync", str(manifest))
        second = box.stats()
        writes2 = sum(second.get(k, 0) - first.get(k, 0) for k in WRITES)
        per_request = serial_seconds_per_request(box.base_url, args.serial_sample)
    users = args.classes * (args.learners + 1)
    serial = per_request * (users + args.classes + users)
    ok = code == 0 and code2 == 0 and summary.get("failed") == 0
    print(
        f"semester users={users} classes={args.classes} latency_ms={args.latency_ms:g} "
        f"rate={args.rate:g}/s concurrency={args.concurrency}: "
        f"P1 wall={wall:.1f}s requests={requests} bound={bound:.1f}s ratio={wall / bound:.2f} "
        f"429s={first.get('429', 0)} serial={serial:.0f}s (scaled from {args.serial_sample}) "
        f"speedup={serial / wall:.1f}x; "
        f"P2 wall={wall2:.2f}s writes={writes2} {'ok' if ok else f'FAILED {summary} {summary2}'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
