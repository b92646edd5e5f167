"""A OneRoster REST sandbox on a free loopback port, and the sources and manifests that use it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kprov.api.pacing import RetryPolicy
from kprov.rosters.api_source import OAUTH1, OAUTH2, V11, ApiSource
from kprov.sandbox.oneroster_data import RosterData
from kprov.sandbox.oneroster_hostile import OneRosterHostility
from kprov.sandbox.oneroster_server import OneRosterSandbox
from kprov.sis.wire import PullOptions

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "kprov" / "samples" / "oneroster"
ROSTERS = ROOT / "tests" / "data" / "rosters"
BAD = ROOT / "tests" / "data" / "bad_rosters"
CLIENT_ID = "district-key"
SECRET = "Sis-Secret-7f3a9c!+/="  # characters that every encoding changes
SECRET_ENV = "TEST_SIS_SECRET"


def secret_forms(secret: str = SECRET) -> list[str]:
    """The secret as it could leak: as is, URL-encoded, and inside the Basic value."""
    basic = base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
    return [secret, quote(secret, safe=""), basic, basic.rstrip("=")]


@contextmanager
def oneroster_box(
    bundle: Path, *, hostile: str = "", page_cap: int = 2, seed: int = 1, **options: Any
) -> Iterator[OneRosterSandbox]:
    server = OneRosterSandbox(
        ("127.0.0.1", 0),
        RosterData(bundle),
        client_id=CLIENT_ID,
        secret=SECRET,
        page_cap=page_cap,
        hostile=OneRosterHostility(hostile, seed=seed),
        **options,
    ).start_background()
    try:
        yield server
    finally:
        server.stop()


def source_for(box: OneRosterSandbox, version: str = V11, **fields: Any) -> ApiSource:
    auth = fields.pop("auth", OAUTH1 if version == V11 else OAUTH2)
    return ApiSource(
        url=box.url(version),
        version=version,
        auth=auth,
        client_id=CLIENT_ID,
        token_url=box.token_url if auth == OAUTH2 else "",
        secret_env=SECRET_ENV,
        **fields,
    )


class FakeTime:
    """A clock that moves only when something sleeps on it (and records the sleeps)."""

    def __init__(self, waits: list[float]) -> None:
        self.now = 1000.0
        self.waits = waits

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def quick(**fields: Any) -> PullOptions:
    """No real waits: retries and 429s recorded in *waits* (pass a list to see them)."""
    time = FakeTime(fields.pop("waits", []))
    fields.setdefault("env", {SECRET_ENV: SECRET})
    return PullOptions(
        retry=RetryPolicy(max_attempts=3, base_delay=0.0),
        sleep=time.sleep,
        clock=time.clock,
        **fields,
    )


def manifest_entry(box: OneRosterSandbox, version: str = V11, **extra: str) -> str:
    """A manifest's `oneroster_api:` list with one entry for *box*."""
    lines = [
        "oneroster_api:",
        f"  - url: {box.url(version)}",
        f"    client_id: {CLIENT_ID}",
        f"    secret_env: {SECRET_ENV}",
    ]
    if version != V11:
        lines.append(f"    token_url: {box.token_url}")
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"
