"""The real CLI against a hostile sandbox: bounded time, a one-line reason, no traceback, and
no credential or token in anything printed -- with and without --debug."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.config import SANDBOX_API_SECRET
from kprov.sandbox.hostile import Hostility
from kprov.state.mapping import MappingJournal
from tests.budgets import record_budget
from tests.conftest import SANDBOX_KEY, Sandbox, start_sandbox, write_roster
from tests.helpers import record_issued_tokens, run_cli


@pytest.fixture
def hostile_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Sandbox, list[str]]]:
    """A sandbox in the given modes, the KPROV_* variables pointing at it, quota pacing on;
    yields it with the list of every token it issues."""
    box = start_sandbox(hostile=Hostility(request.param, seed=5, trickle=0.2))
    issued = record_issued_tokens(box)
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KPROV_RATE_LIMITS", "documented")
    monkeypatch.setenv("KPROV_REQUEST_DEADLINE", "0.5")
    monkeypatch.setenv("KPROV_RETRY_MAX_ATTEMPTS", "1")  # paced GETs are 4 s apart: no retries
    yield box, issued
    box.server.stop()


def secrets_of(issued: list[str]) -> list[str]:
    basic = base64.b64encode(f"{SANDBOX_KEY}:{SANDBOX_API_SECRET}".encode()).decode()
    return [SANDBOX_API_SECRET, basic, *issued]


CASES = [
    ("redirect", ["accounts", "current"], 4, "does not follow redirects"),
    ("redirect-token", ["auth", "status"], 4, "does not follow redirects"),
    ("trickle-token", ["auth", "status"], 4, "within the 0.5 s deadline"),
    ("stall-token", ["auth", "status"], 4, "within the 0.5 s deadline"),
    ("trickle", ["accounts", "current"], 4, "within the 0.5 s deadline"),
    ("stall", ["accounts", "current"], 4, "within the 0.5 s deadline"),
    ("huge-retry-after", ["accounts", "current"], 4, "asked kprov to wait 100000 s"),
    ("huge-rate-delay", ["accounts", "current"], 4, "asked kprov to wait 100000 s"),
    ("echo", ["accounts", "current"], 4, "<redacted>"),
    ("echo-html", ["accounts", "current"], 4, "an HTML page, not an API answer"),
    ("echo-token", ["auth", "status"], 3, "<redacted>"),
    ("missing-id", ["auth", "status"], 4, "the answer has no account id"),
    ("html", ["accounts", "current"], 4, "an HTML page, not an API answer: 50"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize(
    ("hostile_env", "command", "code", "words"),
    CASES,
    indirect=["hostile_env"],
    ids=[c[0] for c in CASES],
)
def test_a_hostile_answer_ends_the_command_briefly_and_safely(
    hostile_env: tuple[Sandbox, list[str]],
    command: list[str],
    code: int,
    words: str,
    debug: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, issued = hostile_env
    budget = record_budget(monkeypatch)
    result = run_cli(*(["--debug"] if debug else []), *command)
    output = result.stdout + result.stderr
    assert result.exit_code == code, output
    # briefly: one attempt per request (the token's, then the call's) within the 0.5 s deadline,
    # and no wait at all (a Retry-After of 100000 s ends the command instead)
    assert len(budget.deadlines) <= 2 and {d.seconds for d in budget.deadlines} <= {0.5}
    assert budget.waits == []
    assert "Traceback" not in output
    assert words in output
    assert output.count("kprov: error:") == 1
    for secret in secrets_of(issued):
        assert secret not in output


@pytest.mark.parametrize("hostile_env", ["reorder"], indirect=True)
def test_import_under_reordered_answers_maps_every_person_to_their_own_account(
    hostile_env: tuple[Sandbox, list[str]], tmp_path: Path, state_dir: Path
) -> None:
    box, _ = hostile_env
    roster = write_roster(tmp_path / "r.csv", [f"stu-{i:03d}" for i in range(120)])
    result = run_cli("accounts", "import", str(roster))
    assert result.exit_code == 0, result.output
    mapping = MappingJournal(state_dir / "mapping.csv").load().account_of
    with box.store.lock:
        server = {e: a for e, a in box.store.by_external.items() if e != "partner-admin"}
    assert mapping == server and len(mapping) == 120


@pytest.fixture
def impatient_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """A sandbox in the given modes (and faults), with the interactive patience scaled down
    about 40 times -- and no KPROV_REQUEST_DEADLINE or KPROV_RETRY_MAX_ATTEMPTS: the interactive
    policy alone must end the command."""
    from kprov.cli import session
    from kprov.sandbox.faults import FaultRates

    modes, faults, trickle = request.param
    box = start_sandbox(
        hostile=Hostility(modes, seed=5, trickle=trickle), faults=FaultRates.parse(faults)
    )
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(
        session,
        "INTERACTIVE",
        session.Patience(attempts=2, connect_timeout=0.2, deadline=0.4, max_server_wait=0.4),
    )
    yield box
    box.server.stop()


IMPATIENT = [
    # (modes, faults, trickle), command, the requests the server saw, words
    (("stall-token", "", 0.2), ["auth", "status"], {"POST /oauth/token": 1}, "0.4 s deadline"),
    (("trickle-token", "", 0.2), ["auth", "status"], {"POST /oauth/token": 1}, "0.4 s deadline"),
    (("stall", "", 0.2), ["accounts", "current"], {"GET /accounts/current": 1}, "0.4 s"),
    (("trickle", "", 0.2), ["accounts", "current"], {"GET /accounts/current": 1}, "0.4 s"),
    (("", "503=1", 0.2), ["accounts", "current"], {"GET /accounts/current": 2}, "HTTP 503"),
    (("", "drop=1", 0.2), ["accounts", "current"], {"GET /accounts/current": 2}, "2 attempts"),
    (("html", "", 0.2), ["accounts", "current"], {"GET /accounts/current": 2}, "HTML page"),
]


@pytest.mark.parametrize(
    ("impatient_env", "command", "seen", "words"),
    IMPATIENT,
    indirect=["impatient_env"],
    ids=[f"{c[0][0] or c[0][1]}" for c in IMPATIENT],
)
def test_an_interactive_command_gives_up_after_two_short_attempts_whatever_the_failure(
    impatient_env: Sandbox,
    command: list[str],
    seen: dict[str, int],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each attempt is cut at the interactive deadline and a failure is tried twice at most
    (a deadline once), so `auth status` against a stalled token endpoint ends in about 15 s
    at full scale, not six attempts of 30 s (185 s, as found)."""
    budget = record_budget(monkeypatch)
    result = run_cli(*command)
    output = result.stdout + result.stderr
    assert result.exit_code == 4, output
    assert words in output
    assert "not JSON" not in output
    requests_seen = impatient_env.requests()
    assert {label: requests_seen.get(label, 0) for label in seen} == seen
    # every attempt at the interactive 0.4 s deadline (the token's and at most two of the
    # call's), and waits no longer than the interactive max_server_wait
    assert {d.seconds for d in budget.deadlines} == {0.4} and len(budget.deadlines) <= 3
    assert sum(budget.waits) <= 0.4


@pytest.mark.parametrize("impatient_env", [("trickle-token", "", 0.015)], indirect=True)
def test_auth_status_against_a_trickled_token_says_no_complete_answer_never_not_json(
    impatient_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status line arrives, the deadline cuts the headers: that is no answer (exit 4,
    outcome unknown), not "the token answer is not JSON" (as found)."""
    monkeypatch.setenv("KPROV_REQUEST_DEADLINE", "0.6")  # shorter than the patience: it wins
    from kprov.cli import session

    monkeypatch.setattr(session, "INTERACTIVE", session.Patience())
    result = run_cli("auth", "status")
    output = result.stdout + result.stderr
    assert result.exit_code == 4, output
    port = impatient_env.server.server_address[1]
    assert f"127.0.0.1:{port}: no complete answer within the 0.6 s deadline" in output
    assert "not JSON" not in output
