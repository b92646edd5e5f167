"""P4: `kprov --help` (and a sub-command's help) must answer in under 0.3 s.

Prints one line with the median of N runs of each, and of a bare `python -c pass` for scale.

    python bench/help_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    kprov = shutil.which("kprov") or sys.executable
    base = [kprov] if kprov != sys.executable else [sys.executable, "-m", "kprov"]
    top = median_seconds([*base, "--help"], args.runs)
    sub = median_seconds([*base, "sync", "--help"], args.runs)
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    verdict = "ok" if max(top, sub) < 0.3 else "OVER"
    print(
        f"help_startup runs={args.runs}: kprov --help={top:.3f}s sync --help={sub:.3f}s "
        f"(python -c pass={bare:.3f}s) bar=0.300s {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
