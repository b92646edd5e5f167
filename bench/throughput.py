"""Safety for free: kprov's requests per second against a bare concurrent client, in one run.

Both run as processes against the same fast, independent server (``bench/servers/
knewton_fast.js``: Node, no limits, no latency), with the same data, in turn (A B A B ...),
the server emptied before each run:
- register: 40 classes of 1 instructor + 249 learners (10,000 accounts in 200 batches, 40
  instances, 10,000 registrations, 41 token requests): `kprov register ROSTER --graph-id G
  --concurrency 16` against ``bench/bare_client.py`` (16 threads, a pooled requests.Session
  each, batches of 50, learners under their instructor's token, nothing recorded or checked);
- accounts: 50,000 ids, accounts only (1,000 batches): `kprov accounts import ROSTER
  --concurrency 16` against ``bare_client.py --accounts-only``.
kprov runs as cron runs it (no --json: one summary line) with every safety it has and quota
pacing off (KPROV_RATE_LIMITS=off), a fresh state directory each time. Each figure is the
whole process, start-up included: requests the server answered / wall seconds; and the
client's CPU (user + system) per request, which the load of a shared machine moves far less
than wall time. Ratios are taken pair by pair.
Bar: kprov / bare >= 0.9 for both cases.

Prints one line: per case, req/s of each (median, min-max), the ratio (median, min), CPU ms
per request of each, and the server's CPU ms per request.

    python bench/throughput.py [--repeat 5] [--case both|register|accounts]
        [--classes 40] [--learners 249] [--accounts 50000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY, SECRET = "bench-key", "bench-secret"
BAR = 0.9


@dataclass
class FastServer:
    root: str
    pid: int

    def call(self, method: str, path: str) -> dict[str, object]:
        request = urllib.request.Request(
            self.root + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return dict(json.load(answer))

    def requests(self) -> int:
        return sum(int(n) for n in self.call("GET", "/_bench/stats")["requests"].values())  # type: ignore[attr-defined]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fast_server() -> Iterator[FastServer]:
    process = subprocess.Popen(
        ["node", str(HERE / "servers" / "knewton_fast.js"), "--key", KEY, "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[1])
        yield FastServer(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Side:
    """One client's runs: requests per second and CPU seconds per request."""

    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median_rate(self) -> float:
        return statistics.median(self.rates)


def timed(command: list[str], env: dict[str, str], server: FastServer) -> tuple[float, float, int]:
    """(requests per second, client CPU seconds per request, requests) of one run."""
    server.call("POST", "/_bench/reset")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{command[1:4]} failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}"
        )
    count = server.requests()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return count / wall, cpu / count, count


def kprov_env(server: FastServer, home: Path) -> dict[str, str]:
    # Modules are compiled once, as an installed package's are (a PYTHONDONTWRITEBYTECODE
    # environment would make kprov compile its ~100 modules on every run: ~0.3 s of CPU).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KPROV_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "KPROV_BASE_URL": server.root + "/v0",
            "KPROV_API_KEY": KEY,
            "KPROV_API_SECRET": SECRET,
            "KPROV_CONFIG": str(home / "config.yaml"),
            "KPROV_STATE_DIR": str(home / "state"),
            "KPROV_RATE_LIMITS": "off",
        }
    )
    return env


def write_rosters(folder: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    register = folder / "semester.csv"
    with register.open("w", encoding="utf-8") as out:
        out.write("external_user_id,role,instance\n")
        for c in range(args.classes):
            out.write(f"tt-{c:03d},instructor,class-{c:03d}\n")
            out.writelines(
                f"tl-{c:03d}-{i:04d},learner,class-{c:03d}\n" for i in range(args.learners)
            )
    accounts = folder / "accounts.csv"
    with accounts.open("w", encoding="utf-8") as out:
        out.write("external_user_id\n")
        out.writelines(f"ta-{i:07d}\n" for i in range(args.accounts))
    return register, accounts


def measure(
    case: str, roster: Path, server: FastServer, args: argparse.Namespace, folder: Path
) -> str:
    bare_cmd = [
        sys.executable,
        str(HERE / "bare_client.py"),
        server.root + "/v0",
        KEY,
        SECRET,
        str(roster),
    ]
    bare_cmd += ["--concurrency", str(args.concurrency)]
    kprov_cmd = [sys.executable, "-m", "kprov"]
    if case == "register":
        kprov_cmd += ["register", str(roster), "--graph-id", "gref-bench"]
    else:
        kprov_cmd += ["accounts", "import", str(roster)]
        bare_cmd.append("--accounts-only")
    kprov_cmd += ["--concurrency", str(args.concurrency)]  # as cron runs it: a summary line
    bare, kprov = Side(), Side()
    ratios: list[float] = []
    counts: set[tuple[str, int]] = set()
    server_cpu: list[float] = []
    for n in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=folder) as home:
            env = kprov_env(server, Path(home))
            for name, side, command in (("bare", bare, bare_cmd), ("kprov", kprov, kprov_cmd)):
                cpu_before = server.cpu_seconds()
                rate, cpu, count = timed(command, env, server)
                server_cpu.append((server.cpu_seconds() - cpu_before) / count)
                side.rates.append(rate)
                side.cpu.append(cpu)
                counts.add((name, count))
            ratios.append(kprov.rates[-1] / bare.rates[-1])
        print(
            f"  {case} #{n + 1}: bare {bare.rates[-1]:.0f} req/s, "
            f"kprov {kprov.rates[-1]:.0f} req/s: {ratios[-1]:.3f}",
            file=sys.stderr,
            flush=True,
        )
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= BAR else "NOT met"

    def ms(values: list[float]) -> str:
        return f"{1000 * statistics.median(values):.2f} ms"

    def rates(side: Side) -> str:
        return f"{side.median_rate():.0f} req/s ({min(side.rates):.0f}-{max(side.rates):.0f})"

    return (
        f"{case}: bare {rates(bare)} kprov {rates(kprov)} "
        f"ratio {ratio:.2f} (min {min(ratios):.2f}; bar {BAR}: {verdict}) "
        f"cpu/request bare {ms(bare.cpu)} kprov {ms(kprov.cpu)} server {ms(server_cpu)} "
        f"requests {'/'.join(str(c) for _n, c in sorted(counts))}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", choices=["both", "register", "accounts"], default="both")
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--learners", type=int, default=249)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    cases = ["register", "accounts"] if args.case == "both" else [args.case]
    with (
        tempfile.TemporaryDirectory(prefix="kprov-throughput-") as scratch,
        fast_server() as server,
    ):
        folder = Path(scratch)
        register, accounts = write_rosters(folder, args)
        lines = [
            measure(c, register if c == "register" else accounts, server, args, folder)
            for c in cases
        ]
    print(
        f"throughput concurrency={args.concurrency} repeat={args.repeat} | " + " | ".join(lines),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
