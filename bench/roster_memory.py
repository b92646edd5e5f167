"""P4 (rosters): checking a 10,000,000-row roster streams, within 1 GiB of memory.

Two figures, each in its own process, measured by that process's peak RSS:
- *check*: `kprov.rosters.check_rosters` validates every row (ids, roles, duplicates) and
  accepts the roster, keeping no people;
- *refuse*: `kprov accounts import ROSTER --dry-run` on the same roster with one duplicate
  on its last line: it must be refused (exit 2) without first building ten million people.
The roster is generated in a temporary directory at run time. Prints one line.

    python bench/roster_memory.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BOUND_MIB = 1024
CHECK = (
    "import sys; from pathlib import Path; from kprov.rosters import check_rosters; "
    "print(check_rosters([Path(sys.argv[1])]).people)"
)


def write_roster(path: Path, rows: int, duplicate_last: bool) -> None:
    chunk = 100_000
    with path.open("w", encoding="utf-8") as out:
        out.write("external_user_id,role,instance\n")
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            out.write(
                "".join(f"stu-{i:08d},learner,sec-{i % 4000:04d}\n" for i in range(start, stop))
            )
        if duplicate_last:
            out.write("stu-00000007,learner,sec-0007\n")


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MiB, exit code, stdout) of one child process, by wait4."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err)
        assert child.stdout is not None
        out = child.stdout.read().decode()
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: tell Popen
    return time.monotonic() - started, usage.ru_maxrss / 1024, child.returncode, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kprov-p4-") as scratch:
        folder = Path(scratch)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
        env.update(
            {
                "KPROV_BASE_URL": "http://127.0.0.1:9/v0",
                "KPROV_API_KEY": "k",
                "KPROV_CONFIG": str(folder / "c.yaml"),
                "KPROV_STATE_DIR": str(folder),
            }
        )
        good, bad = folder / "roster.csv", folder / "refused.csv"
        write_roster(good, args.rows, duplicate_last=False)
        size_mb = good.stat().st_size / 1e6
        check = measure([sys.executable, "-c", CHECK, str(good)], env)
        good.unlink()
        write_roster(bad, args.rows, duplicate_last=True)
        refuse = measure(
            [sys.executable, "-m", "kprov", "accounts", "import", str(bad), "--dry-run"], env
        )
    accepted = check[2] == 0 and check[3].strip() == str(args.rows)
    refused = refuse[2] == 2
    worst = max(check[1], refuse[1])
    verdict = "FAILED" if not (accepted and refused) else "ok" if worst <= BOUND_MIB else "OVER"
    print(
        f"roster_memory rows={args.rows:,} ({size_mb:.0f} MB): "
        f"check {check[0]:.1f}s peak_rss={check[1]:.0f}MiB ({check[1] / BOUND_MIB:.2f} of "
        f"{BOUND_MIB}MiB); refuse (duplicate on the last line) {refuse[0]:.1f}s "
        f"peak_rss={refuse[1]:.0f}MiB ({refuse[1] / BOUND_MIB:.2f}) {verdict}"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main())
