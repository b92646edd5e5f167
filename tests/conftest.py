"""Shared fixtures: an isolated environment for every test, and a sandbox on a free port."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from kprov.config import SANDBOX_API_SECRET
from kprov.sandbox.faults import FaultInjector, FaultRates
from kprov.sandbox.server import SandboxHTTPServer
from kprov.sandbox.store import SandboxStore

SANDBOX_KEY = "test-key"


def pytest_configure(config: pytest.Config) -> None:
    """kprov compiled once, before the workers start: in a fresh clone each worker and each
    `python -m kprov` of the first tests compiled it again, side by side."""
    if not hasattr(config, "workerinput"):
        import compileall

        compileall.compile_dir(Path(__file__).parents[1] / "kprov", quiet=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: on two workers, a 10 s test handed out last is a 10 s tail."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No KPROV_* from the developer's shell, config and state in tmp, no keyring backend."""
    for name in list(os.environ):
        if name.startswith("KPROV_") or name == "NO_COLOR":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("KPROV_CONFIG", str(home / "config.yaml"))
    monkeypatch.setenv("KPROV_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("KPROV_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("KPROV_RATE_LIMITS", "off")  # tests that pace say so themselves
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield home
    keyring.set_keyring(previous)


@dataclass
class Sandbox:
    server: SandboxHTTPServer
    store: SandboxStore

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def env(self) -> dict[str, str]:
        return {
            "KPROV_BASE_URL": self.base_url,
            "KPROV_API_KEY": SANDBOX_KEY,
            "KPROV_API_SECRET": SANDBOX_API_SECRET,
        }

    def requests(self) -> dict[str, int]:
        with self.store.lock:
            return dict(self.store.requests)

    def write_requests(self) -> int:
        """Requests that could change state (everything but tokens and GETs)."""
        return sum(
            n
            for label, n in self.requests().items()
            if label.split(" ")[0] in ("POST", "DELETE") and label != "POST /oauth/token"
        )

    def enrolments(self) -> set[tuple[str, str, str]]:
        """(external id, instance name, type) of every valid registration on the server."""
        with self.store.lock:
            ext_of = {a["id"]: a["external_user_id"] for a in self.store.accounts.values()}
            name_of = {i["id"]: i["name"] for i in self.store.instances.values()}
            return {
                (ext_of[r["account_id"]], name_of[r["learning_instance_id"]], r["type"])
                for r in self.store.registrations.values()
                if not r["invalid"]
            }

    def http_get(self, path: str) -> Any:

        root = self.base_url.rsplit("/v0", 1)[0]
        with urllib.request.urlopen(root + path, timeout=5) as answer:
            return json.load(answer)


def start_sandbox(**options: Any) -> Sandbox:
    store_options = {
        k: options.pop(k)
        for k in list(options)
        if k in ("state_path", "token_ttl", "strict_learner_permissions", "token_account_id")
    }
    store = SandboxStore(api_key=SANDBOX_KEY, api_secret=SANDBOX_API_SECRET, **store_options)
    faults = options.pop("faults", None)
    seed = options.pop("seed", 1)
    server = SandboxHTTPServer(
        ("127.0.0.1", 0), store, faults=FaultInjector(faults or FaultRates(), seed), **options
    )
    return Sandbox(server.start_background(), store)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = start_sandbox()
    yield box
    box.server.stop()


@pytest.fixture
def sandbox_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, with the KPROV_* variables pointing at it."""
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    return sandbox


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections for the whole test: bound, never listening, so
    no other test (or xdist worker) can start a server on it meanwhile."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


@pytest.fixture
def state_dir(isolated_env: Path) -> Path:
    return isolated_env / "state"


def write_roster(path: Path, ids: list[str], header: str = "external_user_id") -> Path:
    path.write_text(header + "\n" + "".join(f"{i}\n" for i in ids), encoding="utf-8")
    return path
