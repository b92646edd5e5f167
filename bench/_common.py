"""Shared plumbing for the benchmark scripts: a sandbox in its own process, a clean state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SANDBOX_KEY = "sandbox-key"
SANDBOX_SECRET = "sandbox-secret"

# The two rate-limited servers every pacing figure is measured against (with --rate-limit):
# the sandbox's lenient default, and the hard case of issue 14 (an independent server with a
# small burst that answers 429 with a whole-second Retry-After for a ~2.5 ms wait).
SERVERS: dict[str, tuple[str, ...]] = {
    "burst-1s": ("--retry-after", "ceil"),
    "burst-20": ("--burst", "20", "--retry-after", "ceil"),
}
# Also worth a look (not in the bars): the API's documented style, 429 without Retry-After.
EXTRA_SERVERS: dict[str, tuple[str, ...]] = {
    "burst-20-silent": ("--burst", "20", "--retry-after", "none"),
}


def api_requests(stats: dict[str, int]) -> int:
    """Requests the server processed or refused by quota (not its rate limiter's 429s)."""
    return sum(n for k, n in stats.items() if k != "429" and "marked" not in k)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class BenchSandbox:
    base_url: str
    root: str

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.root + "/_sandbox/stats", timeout=10) as answer:
            return dict(json.load(answer)["requests"])


@contextmanager
def sandbox_process(*args: str) -> Iterator[BenchSandbox]:
    """`kprov sandbox serve ARGS` in a separate process (its own GIL), stopped afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kprov", "sandbox", "serve", "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(root + "/_sandbox/stats", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield BenchSandbox(base_url=root + "/v0", root=root)
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def kprov_environment(box: BenchSandbox, rate_limits: str = "off") -> Iterator[dict[str, str]]:
    """A fresh config and state directory, with KPROV_* pointing at the sandbox."""
    with tempfile.TemporaryDirectory(prefix="kprov-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
        env.update(
            {
                "KPROV_BASE_URL": box.base_url,
                "KPROV_API_KEY": SANDBOX_KEY,
                "KPROV_API_SECRET": SANDBOX_SECRET,
                "KPROV_CONFIG": str(Path(home) / "config.yaml"),
                "KPROV_STATE_DIR": str(Path(home) / "state"),
                "KPROV_RATE_LIMITS": rate_limits,
            }
        )
        env["BENCH_HOME"] = home
        yield env


def write_ids(
    path: Path, ids: list[str], extra_header: str = "", rows: list[str] | None = None
) -> Path:
    header = "external_user_id" + (f",{extra_header}" if extra_header else "")
    lines = rows if rows is not None else ids
    path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_kprov(env: dict[str, str], *args: str) -> tuple[float, dict[str, object], int]:
    """Run the real command; return (wall seconds, its --json summary, exit code).

    The summary is the JSON envelope's outcome counts with its scalar fields (requests,
    rate_limited, seconds, exit_code); the per-item list is dropped."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kprov", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    elapsed = time.monotonic() - started
    try:
        envelope = json.loads(done.stdout)
    except ValueError:
        return (
            elapsed,
            {"stdout": done.stdout[-500:], "stderr": done.stderr[-2000:]},
            done.returncode,
        )
    summary: dict[str, object] = dict(envelope.get("counts") or {})
    summary.update(
        {k: v for k, v in envelope.items() if isinstance(v, int | float | str) and k != "kprov"}
    )
    if envelope.get("error"):
        summary["error"] = envelope["error"]
    return elapsed, summary, done.returncode
