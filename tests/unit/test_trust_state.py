"""Trust, round three, in the core and the state: no false duplicate warning, damaged journals
quoted briefly, ids canonical on load, instances forgotten with their registrations, and a
progress display that says what it waits for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kprov.api.errors import NetworkError, RateLimited, ServerKeptRefusing
from kprov.cli.progress import Progress
from kprov.errors import ConfigError, Interrupted
from kprov.provision.execute import Executor
from kprov.state.local import LocalState, open_local_state
from kprov.state.mapping import HEADER, MappingJournal
from kprov.state.registry import Registry
from tests.fakes import FakeApi, register_plan, run, semester


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "s", tmp_path / "s" / "mapping.csv") as local:
        yield local


UPPER = "828815A2-5038-4352-A681-82C96921DDF5"


@pytest.mark.parametrize(
    ("stop", "warns"),
    [
        (RateLimited("429 for ever", status=429), False),
        (ServerKeptRefusing("refused for 120 s", status=429), False),
        (Interrupted("stopped while queued"), True),  # the default: may have been sent
        (NetworkError("reset", outcome_unknown=True), True),
        (NetworkError("connection refused", outcome_unknown=False), False),
    ],
    ids=["429", "stall", "interrupted", "lost answer", "refused connection"],
)
def test_only_a_create_that_may_have_been_applied_makes_the_rerun_warn(
    state: LocalState,
    stop: Exception,
    warns: bool,
) -> None:
    api = FakeApi(faults={"instance": [stop] * 3})
    result = run(api, state, register_plan(state, semester(classes=1, learners=1)))
    assert result.stopped_by is stop
    assert bool(state.registry.instance_index.intent_warnings()) is warns


def test_an_interrupt_before_sending_leaves_no_intent(state: LocalState) -> None:
    nothing_sent = Interrupted("stopped while queued")
    nothing_sent.outcome_unknown = False  # as the transport says when no attempt went out
    api = FakeApi(faults={"instance": [nothing_sent]})
    run(api, state, register_plan(state, semester(classes=1, learners=1)))
    assert state.registry.instance_index.intent_warnings() == []


# ------------------------------------------------------------------ journals


def test_a_damaged_journal_names_where_the_damage_starts_and_quotes_a_little(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mapping.csv"
    good = "828815a2-5038-4352-a681-82c96921ddf5"
    rows = [f"stu-{n:04d},{good},2026-01-01T00:00:00Z,,created" for n in range(50)]
    rows[3] = 'stu-0003,"' + "x" * 200 + ",2026,,created"  # an unbalanced quote
    path.write_text(",".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        MappingJournal(path).load()
    message = caught.value.message
    assert f"{path}:5 is damaged (a quote opened there runs to line 51)" in message
    assert "stu-0049" not in message and "stu-0010" not in message  # never the rest
    assert len(message) < len(str(path)) + 180


def test_a_damaged_line_with_control_characters_is_quoted_escaped(tmp_path: Path) -> None:
    path = tmp_path / "mapping.csv"
    path.write_text(",".join(HEADER) + "\nx\x1b[2J,,,,created\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        MappingJournal(path).load()
    assert "\x1b" not in caught.value.message and ":2 is damaged" in caught.value.message


def test_ids_recorded_in_another_case_are_read_canonical(tmp_path: Path) -> None:
    state_dir = tmp_path / "s"
    state_dir.mkdir()
    (state_dir / "mapping.csv").write_text(
        ",".join(HEADER) + f"\nstu-1,{UPPER},2026-01-01T00:00:00Z,,created\n", encoding="utf-8"
    )
    (state_dir / "instances.csv").write_text(
        "key,instance_id,graph_id,name,start_date,end_date,created_at,status\n"
        f"alg,{UPPER},g,Algebra,,,2026,created\n",
        encoding="utf-8",
    )
    (state_dir / "registrations.csv").write_text(
        "account_id,instance_id,type,registration_id,external_user_id,created_at,status\n"
        f"{UPPER},{UPPER},learner,{UPPER},stu-1,2026,registered\n",
        encoding="utf-8",
    )
    assert MappingJournal(state_dir / "mapping.csv").load().account_of == {"stu-1": UPPER.lower()}
    registry = Registry.open(state_dir)
    assert registry.instance_index.find("alg").instance_id == UPPER.lower()  # type: ignore[union-attr]
    assert registry.instance_index.find(UPPER) is not None  # found by either spelling
    [record] = registry.registration_index.active.values()
    assert (record.account_id, record.instance_id, record.registration_id) == (UPPER.lower(),) * 3


def test_forgetting_an_instance_forgets_its_registrations_durably(tmp_path: Path) -> None:
    api = FakeApi()
    with open_local_state(tmp_path / "s", tmp_path / "s" / "mapping.csv") as local:
        run(api, local, register_plan(local, semester(classes=2, learners=2)))
        record = local.registry.instance_index.by_key["c0"]
        assert local.registry.forget_instance(record) == 3
    registry = Registry.open(tmp_path / "s")
    assert registry.instance_index.find("c0") is None and "c1" in registry.instance_index.by_key
    assert all(
        r.instance_id != record.instance_id for r in registry.registration_index.active.values()
    )
    assert len(registry.registration_index.active) == 3  # c1's are kept
    assert registry.instance_index.intent_warnings() == []


# ------------------------------------------------------------------ progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_says_what_it_waits_for_counting_down(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    progress = Progress("sync", 8000, enabled=True, plain_every=10, clock=clock)
    progress.advance(4500)
    progress.waiting("the POST /batch quota", 41.4)
    assert "waiting for the POST /batch quota: 41 s" in capsys.readouterr().err  # at once
    clock.now += 20
    assert progress.wait_text() == "waiting for the POST /batch quota: 21 s"
    progress.waiting("the POST /batch quota", 0)
    assert progress.wait_text() == ""


def test_what_a_wait_names_is_escaped_in_both_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """*what* quotes an endpoint and a server's status: an escape sequence in it stays inert."""
    clock = Clock()
    progress = Progress("sync", 10, enabled=True, plain_every=10, clock=clock)
    progress.waiting("the server (\x1b]0;pwned\x07 \u202e)", 30)
    said = capsys.readouterr().err
    assert "\x1b" not in said and "\u202e" not in said and "\\x1b]0;pwned\\x07" in said
    shown = progress.wait_text()
    assert "\x1b" not in shown and "\\u202e" in shown


def test_the_estimate_grows_during_a_wait_instead_of_freezing() -> None:
    clock = Clock()
    progress = Progress("sync", 8000, enabled=False, clock=clock)
    clock.now += 45
    progress.advance(4500)  # 100 items/s so far
    before = progress.eta_text()
    clock.now += 58  # a quota wait: nothing done
    after = progress.eta_text()
    assert before == "0:00:35" and after > before


def test_the_executor_tells_which_quota_it_waits_for(state: LocalState) -> None:
    api = FakeApi(delays={(None, "POST /batch"): [30.0] * 5})
    seen: list[tuple[str, float]] = []

    def told(what: str, seconds: float) -> None:
        seen.append((what, seconds))
        if seconds:
            api.cancel.set()  # stop the wait once it is told (no timer: a loaded box is slow)

    executor = Executor(api, state, on_wait=told)
    executor.run(register_plan(state, semester(classes=1, learners=1)))
    assert seen[0] == ("the POST /batch quota", 30.0)
    assert seen[-1] == ("the POST /batch quota", 0.0)  # told when it ends
