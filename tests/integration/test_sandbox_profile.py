"""The README's first command: the built-in sandbox profile needs nothing else."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "sample_rosters"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sample_semester_syncs_on_the_embedded_sandbox_and_state_persists(
    isolated_env: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
    env.update(
        {
            "KPROV_CONFIG": str(isolated_env / "config.yaml"),
            "KPROV_STATE_DIR": str(isolated_env / "state"),
            "KPROV_SANDBOX_PORT": str(free_port()),
        }
    )

    def kprov(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kprov", "--profile", "sandbox", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = kprov("sync", str(SAMPLES / "semester.yaml"), "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)["counts"]
    assert summary == {"created": 30, "instance_created": 3, "registered": 30, "skipped_rows": 2}
    again = kprov("sync", str(SAMPLES / "semester.yaml"))
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    listed = json.loads(kprov("instances", "list", "--json").stdout)["instances"]
    assert sorted(i["key"] for i in listed) == ["alg1-p1", "bio-p3", "or-c-01"]
    assert kprov("mapping", "verify").returncode == 0
    assert (isolated_env / "state" / "sandbox-server.jsonl").exists()
