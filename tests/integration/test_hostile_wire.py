"""Token answers and echoes no earlier suite tried, over real HTTP through the real CLI: an
access token that would split a header, an expires_in no float holds, a refresh grant that
fails every way, an error page that HTML-escapes the secret it echoes."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.api.client import KnewtonClient
from kprov.api.pacing import RetryPolicy
from kprov.credentials import Secret
from kprov.sandbox.faults import FaultInjector, FaultRates
from kprov.sandbox.hostile import Hostility
from kprov.sandbox.server import SandboxHTTPServer
from kprov.sandbox.store import SandboxStore
from kprov.state.mapping import MappingJournal
from tests.conftest import SANDBOX_KEY, Sandbox
from tests.helpers import record_issued_tokens, run_cli

# Every character an HTML page, a URL or JSON would write differently.
ODD_SECRET = "Se/cr+et&<\"x>='q"


def serve(modes: str, *, secret: str = ODD_SECRET, seed: int = 3) -> Sandbox:
    store = SandboxStore(api_key=SANDBOX_KEY, api_secret=secret)
    server = SandboxHTTPServer(
        ("127.0.0.1", 0),
        store,
        faults=FaultInjector(FaultRates(), 1),
        hostile=Hostility(modes, seed=seed, trickle=0.2),
    )
    return Sandbox(server.start_background(), store)


@pytest.fixture
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox in the given modes whose secret is ODD_SECRET, the KPROV_* env set for it,
    recording every token it issues in ``box.issued``."""
    box = serve(request.param)
    issued = record_issued_tokens(box)
    box.issued = issued  # type: ignore[attr-defined]
    monkeypatch.setenv("KPROV_BASE_URL", box.base_url)
    monkeypatch.setenv("KPROV_API_KEY", SANDBOX_KEY)
    monkeypatch.setenv("KPROV_API_SECRET", ODD_SECRET)
    monkeypatch.setenv("KPROV_REQUEST_DEADLINE", "2")
    yield box
    box.server.stop()


def forms_of(secret: str) -> list[str]:
    """The secret as a leak would show it: raw, HTML-escaped, inside the Basic value."""
    basic = base64.b64encode(f"{SANDBOX_KEY}:{secret}".encode()).decode()
    return [secret, html.escape(secret), html.escape(secret, quote=False), basic]


@pytest.mark.parametrize("wire", ["token-crlf"], indirect=True)
def test_a_token_that_would_split_a_header_is_refused_without_a_traceback(
    wire: Sandbox,
) -> None:
    result = run_cli("accounts", "current")
    output = result.stdout + result.stderr
    assert result.exit_code == 4, output
    assert "Traceback" not in output
    assert "access_token is not a printable ASCII token" in output
    assert "X-Injected" not in output
    assert wire.requests().get("GET /accounts/current", 0) == 0  # never sent with it


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_any_expires_in_the_server_writes_still_ends_in_an_answer(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = serve("token-expiry", seed=seed)
    try:
        monkeypatch.setenv("KPROV_BASE_URL", box.base_url)
        monkeypatch.setenv("KPROV_API_KEY", SANDBOX_KEY)
        monkeypatch.setenv("KPROV_API_SECRET", ODD_SECRET)
        result = run_cli("accounts", "current")
    finally:
        box.server.stop()
    output = result.stdout + result.stderr
    assert result.exit_code == 0, output
    assert box.store.admin_id in output


def test_a_failing_refresh_grant_falls_back_to_the_client_credentials() -> None:
    """Whatever the refresh grant answers (500 page, 422, a 200 without a token), the next
    request gets a token: one broken refresh must not fail every item of a run."""
    box = serve("refresh-fail", seed=11)
    try:
        with KnewtonClient(
            base_url=box.base_url,
            api_key=SANDBOX_KEY,
            api_secret=Secret(ODD_SECRET),
            retry=RetryPolicy(max_attempts=2, base_delay=0.001),
        ) as client:
            for _ in range(6):  # the seeded modes pick each of the three failures
                stale = client.token_for()
                client.tokens.invalidate(None, stale)
                fresh = client.token_for()
                assert fresh.access_token not in ("", stale.access_token)
                assert client.current_account().id == box.store.admin_id
        with box.store.lock:
            live = set(box.store.tokens)
        assert fresh.access_token in live
    finally:
        box.server.stop()


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize(
    "wire", ["echo-token-html", "echo-html", "echo-token", "echo"], indirect=True
)
def test_an_echoed_secret_is_scrubbed_in_every_escaping(
    wire: Sandbox, debug: bool, tmp_path: Path
) -> None:
    """A proxy's error page HTML-escapes what it quotes: with --debug the page is logged as
    sent, so the escaped forms of the secret must be scrubbed too."""
    log, report = tmp_path / "run.log", tmp_path / "report.json"
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(
        "instances:\n  - key: c1\n    name: Class one\n    graph_id: gref-demo\n"
        "    people:\n      - instructors: [t-1]\n      - learners: [s-1, s-2]\n",
        encoding="utf-8",
    )
    result = run_cli(
        *(["--debug"] if debug else []),
        "--json",
        "sync",
        str(manifest),
        "--log-file",
        str(log),
        "--report",
        str(report),
    )
    output = result.stdout + result.stderr
    assert result.exit_code in (1, 3, 4), output
    assert "Traceback" not in output
    assert "<redacted>" in output or "an HTML page" in output
    written = "".join(f.read_text(encoding="utf-8") for f in (log, report) if f.exists())
    for secret in [*forms_of(ODD_SECRET), *wire.issued]:  # type: ignore[attr-defined]
        assert secret not in output
        assert secret not in written


@pytest.mark.parametrize("wire", ["newline-id=0.5"], indirect=True)
def test_an_id_with_a_trailing_newline_is_never_recorded(
    wire: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """``re.match("...$")`` takes "<uuid>\\n": such an id once landed in the mapping (quoted,
    across two lines) and made `mapping verify` report every row as a mismatch."""
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(
        "instances:\n  - key: c1\n    name: Class one\n    graph_id: gref-demo\n"
        "    people:\n      - instructors: [t-1]\n"
        "      - learners: [s-1, s-2, s-3, s-4, s-5, s-6]\n",
        encoding="utf-8",
    )
    for _ in range(3):
        result = run_cli("sync", str(manifest))
        output = result.stdout + result.stderr
        assert result.exit_code in (0, 1, 4), output
        assert "Traceback" not in output
    for name in ("mapping.csv", "instances.csv", "registrations.csv"):
        path = state_dir / name
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        assert '\n"' not in text and '\n",' not in text, (name, text)
    mapping = MappingJournal(state_dir / "mapping.csv").load().account_of
    with wire.store.lock:
        server = {e: a for e, a in wire.store.by_external.items() if e != "partner-admin"}
    assert mapping and all(server[ext] == account for ext, account in mapping.items())


@pytest.mark.parametrize("wire", ["reused-id"], indirect=True)
def test_a_registration_id_given_twice_is_never_recorded_for_another_person(
    wire: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """One id answered for every registration was recorded for all of them, and removing
    a learner later DELETEd the instructor's registration (exit 0)."""
    manifest = tmp_path / "semester.yaml"
    people = "    people:\n      - instructors: [t-1]\n      - learners: [s-1, s-2]\n"
    manifest.write_text(
        "instances:\n  - key: c1\n    name: Class one\n    graph_id: gref-demo\n" + people,
        encoding="utf-8",
    )
    result = run_cli("sync", str(manifest))
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "already given to another registration" in output
    rows = (state_dir / "registrations.csv").read_text(encoding="utf-8").splitlines()[1:]
    ids = [row.split(",")[3] for row in rows if row.split(",")[3]]
    assert len(ids) == len(set(ids)) == 1

    wire.server.hostile.modes.clear()  # an honest server from now on
    manifest.write_text(manifest.read_text().replace("[s-1, s-2]", "[s-2]"), encoding="utf-8")
    result = run_cli("sync", str(manifest), "--prune", "--max-removals", "100%")
    assert "Traceback" not in result.stdout + result.stderr
    registered = {(ext, kind) for ext, _, kind in wire.enrolments()}
    assert ("t-1", "instructor") in registered  # never deleted in someone else's name


@pytest.mark.parametrize("wire", ["html-404"], indirect=True)
def test_a_proxy_404_page_never_counts_as_already_removed(
    wire: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """The API's JSON 404 means "already gone"; a proxy's HTML 404 page says nothing about
    the registration, which was recorded as removed while it stayed on the server."""
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(
        "instances:\n  - key: c1\n    name: Class one\n    graph_id: gref-demo\n"
        "    people:\n      - instructors: [t-1]\n      - learners: [s-1, s-2]\n",
        encoding="utf-8",
    )
    assert run_cli("sync", str(manifest)).exit_code == 0
    manifest.write_text(manifest.read_text().replace("[s-1, s-2]", "[s-2]"), encoding="utf-8")
    prune = ("sync", str(manifest), "--prune", "--max-removals", "100%")
    result = run_cli(*prune)
    output = result.stdout + result.stderr
    assert result.exit_code == 1, output
    assert "an HTML page, not an API answer: 404 Not Found" in output
    assert ("s-1", "Class one", "learner") in wire.enrolments()
    assert ",s-1," in (state_dir / "registrations.csv").read_text(encoding="utf-8")
    assert "removed" not in (state_dir / "registrations.csv").read_text(encoding="utf-8")

    wire.server.hostile.modes.clear()
    result = run_cli(*prune)  # the rerun removes it for real
    assert result.exit_code == 0, result.stdout + result.stderr
    assert ("s-1", "Class one", "learner") not in wire.enrolments()
