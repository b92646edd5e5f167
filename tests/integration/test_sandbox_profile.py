"""The README's first commands: the sample semester, the built-in sandbox profile, its reset,
and a sandbox port held by something else."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from kprov.cli.builtin_sandbox import PROBE_TIMEOUT
from kprov.sample_semester import sample_files

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def bare_env(isolated_env: Path, tmp_path: Path) -> dict[str, str]:
    """A subprocess environment with no KPROV_STATE_DIR: the sandbox keeps its own state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
    env.update(
        KPROV_CONFIG=str(isolated_env / "config.yaml"),
        KPROV_SANDBOX_PORT=str(free_port()),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    return env


def kprov(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kprov", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sandbox_state_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "kprov" / "profiles" / "sandbox"


def test_repository_samples_are_the_packaged_ones() -> None:
    """One copy: sample_rosters/ is a link to the package data, so they cannot drift."""
    assert (REPO / "sample_rosters").resolve() == (REPO / "kprov" / "samples").resolve()
    assert {"semester.yaml", "oneroster/users.csv", "students.csv"} <= set(sample_files())


@pytest.mark.slow
def test_sample_semester_syncs_from_anywhere_on_the_embedded_sandbox_and_resets(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wrote = kprov(bare_env, "sandbox", "sample", "try", cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    assert sorted(
        str(p.relative_to(tmp_path / "try")) for p in (tmp_path / "try").rglob("*.*")
    ) == (sorted(sample_files()))
    manifest = str(tmp_path / "try" / "semester.yaml")

    first = kprov(bare_env, "--profile", "sandbox", "sync", manifest, "--json", cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)["counts"]
    assert summary == {"created": 30, "instance_created": 3, "registered": 30, "skipped_rows": 2}
    again = kprov(bare_env, "--profile", "sandbox", "sync", manifest)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    listed = json.loads(
        kprov(bare_env, "--profile", "sandbox", "instances", "list", "--json").stdout
    )
    assert sorted(i["key"] for i in listed["instances"]) == ["alg1-p1", "bio-p3", "or-c-01"]
    state = sandbox_state_dir(bare_env)
    assert (state / "sandbox-server.jsonl").exists() and (state / "mapping.csv").exists()

    refused = kprov(bare_env, "sandbox", "reset")  # no terminal, no --yes
    assert refused.returncode == 2 and (state / "mapping.csv").exists()
    reset = kprov(bare_env, "sandbox", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert not state.exists()
    fresh = kprov(bare_env, "--profile", "sandbox", "sync", manifest, "--json")
    assert json.loads(fresh.stdout)["counts"]["created"] == 30  # the server forgot them too


def test_sample_refuses_to_overwrite_without_force(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    assert kprov(bare_env, "sandbox", "sample", str(tmp_path / "s")).returncode == 0
    (tmp_path / "s" / "semester.yaml").write_text("mine\n")
    refused = kprov(bare_env, "sandbox", "sample", str(tmp_path / "s"))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (tmp_path / "s" / "semester.yaml").read_text() == "mine\n"
    assert kprov(bare_env, "sandbox", "sample", str(tmp_path / "s"), "--force").returncode == 0
    assert (tmp_path / "s" / "semester.yaml").read_text() != "mine\n"


def test_reset_refuses_a_shared_state_dir_and_a_running_sandbox(
    bare_env: dict[str, str], tmp_path: Path
) -> None:
    shared = tmp_path / "prod-state"
    shared.mkdir()
    (shared / "mapping.csv").write_text("external_user_id,account_id\n")
    refused = kprov({**bare_env, "KPROV_STATE_DIR": str(shared)}, "sandbox", "reset", "--yes")
    assert refused.returncode == 3 and "KPROV_STATE_DIR is set" in refused.stderr
    assert (shared / "mapping.csv").exists()

    port = bare_env["KPROV_SANDBOX_PORT"]
    server = subprocess.Popen(
        [sys.executable, "-m", "kprov", "sandbox", "serve", "--port", port],
        env=bare_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and "listening" in server.stdout.readline()
        busy = kprov(bare_env, "sandbox", "reset", "--yes")
        assert busy.returncode == 3 and "a kprov sandbox is listening" in busy.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


class _HtmlHandler(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        body = b"<html><body>Another service</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_HtmlHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), seen
    server.shutdown()
    server.server_close()


def test_a_port_held_by_another_http_service_is_named_and_sent_nothing(
    bare_env: dict[str, str], html_server: tuple[int, list[str]]
) -> None:
    port, seen = html_server
    env = {**bare_env, "KPROV_SANDBOX_PORT": str(port), "KPROV_API_SECRET": "real-secret"}
    done = kprov(env, "--profile", "sandbox", "auth", "status")
    assert done.returncode == 3
    assert f"127.0.0.1:{port}" in done.stderr and "KPROV_SANDBOX_PORT=" in done.stderr
    assert "HTTP 200, text/html" in done.stderr and "<html>" not in done.stderr
    assert "sandbox reset" not in done.stderr  # no state yet: a new port is all it takes
    assert seen == ["GET /_sandbox/stats"]  # the probe, and nothing else


def test_a_first_sync_on_a_held_port_is_not_told_to_reset(
    bare_env: dict[str, str], html_server: tuple[int, list[str]], tmp_path: Path
) -> None:
    """A sync opens the state (recording its owner) before the port is probed: that owner,
    over a state that records nothing, binds nothing, so the advice is a new port alone, and
    following it works without `kprov sandbox reset`."""
    assert kprov(bare_env, "sandbox", "sample", str(tmp_path / "try")).returncode == 0
    manifest = str(tmp_path / "try" / "semester.yaml")
    held, _ = html_server
    for _attempt in range(2):  # the second finds the owner the first recorded
        refused = kprov(
            {**bare_env, "KPROV_SANDBOX_PORT": str(held)}, "--profile", "sandbox", "sync", manifest
        )
        assert refused.returncode == 3 and "KPROV_SANDBOX_PORT=" in refused.stderr
        assert "sandbox reset" not in refused.stderr
    assert (sandbox_state_dir(bare_env) / "owner.json").exists()
    moved = kprov(bare_env, "--profile", "sandbox", "sync", manifest, "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["counts"]["created"] == 30


def test_the_advice_for_a_held_port_works_when_the_sandbox_already_has_state(
    bare_env: dict[str, str], html_server: tuple[int, list[str]], tmp_path: Path
) -> None:
    """The state names the URL it was made with, so a new port alone would be refused (exit 3,
    "another setup"): the advice says to reset first, and following it works."""
    assert kprov(bare_env, "sandbox", "sample", str(tmp_path / "try")).returncode == 0
    manifest = str(tmp_path / "try" / "semester.yaml")
    assert kprov(bare_env, "--profile", "sandbox", "sync", manifest).returncode == 0
    held, _ = html_server
    env = {**bare_env, "KPROV_SANDBOX_PORT": str(held)}
    refused = kprov(env, "--profile", "sandbox", "auth", "status")
    assert refused.returncode == 3 and "kprov sandbox reset --yes" in refused.stderr
    moved = {**bare_env, "KPROV_SANDBOX_PORT": str(free_port())}
    assert kprov(moved, "sandbox", "reset", "--yes").returncode == 0
    again = kprov(moved, "--profile", "sandbox", "sync", manifest, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["created"] == 30


def test_a_port_held_by_a_silent_listener_is_named_quickly(bare_env: dict[str, str]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        done = kprov(
            {**bare_env, "KPROV_SANDBOX_PORT": str(port)}, "--profile", "sandbox", "auth", "status"
        )
        silent.setblocking(False)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                silent.accept()[0].close()
                connections += 1
    assert done.returncode == 3 and "no HTTP answer" in done.stderr
    # quickly: one connection, the probe, under its own short timeout (never the default
    # timeouts, nor a second try); nothing else, not even the secret, went to the port
    assert connections == 1 and PROBE_TIMEOUT <= 2
