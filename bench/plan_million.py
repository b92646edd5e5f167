"""P3: the plan for a 1,000,000-row roster against a 1,000,000-line mapping.

`kprov accounts import ROSTER --dry-run` reads and validates the roster, loads the mapping and
decides what to send (here: nothing, every id is mapped). Bars: 10 s and 600 MiB.
Prints one line: wall time, peak memory (max RSS of the process), and the counts.

    python bench/plan_million.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kprov-p3-") as scratch:
        folder = Path(scratch)
        roster, mapping = folder / "roster.csv", folder / "mapping.csv"
        with roster.open("w") as r, mapping.open("w") as m:
            r.write("external_user_id,role\n")
            m.write("external_user_id,account_id,created_at,sis_id,status\n")
            for i in range(args.rows):
                r.write(f"stu-{i:07d},learner\n")
                m.write(f"stu-{i:07d},{uuid.UUID(int=i)},2026-09-01T02:00:00Z,,created\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
        env.update(
            {
                "KPROV_BASE_URL": "http://127.0.0.1:9/v0",
                "KPROV_API_KEY": "k",
                "KPROV_CONFIG": str(folder / "c.yaml"),
                "KPROV_STATE_DIR": str(folder),
            }
        )
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "kprov",
                "accounts",
                "import",
                str(roster),
                "--dry-run",
                "--json",
                "--mapping",
                str(mapping),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    envelope = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-300:]}
    counts = envelope.get("counts", {})
    ok = done.returncode == 0 and counts.get("already_mapped") == args.rows
    verdict = "ok" if ok and wall <= 10 and peak_mib <= 600 else "OVER" if ok else "FAILED"
    print(
        f"plan_million rows={args.rows}: wall={wall:.1f}s ({wall / 10:.2f} of 10 s) "
        f"peak_rss={peak_mib:.0f}MiB ({peak_mib / 600:.2f} of 600 MiB) "
        f"already_mapped={counts.get('already_mapped')} {verdict}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
