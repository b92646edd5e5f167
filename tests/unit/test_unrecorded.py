"""`history --person` after a killed run: what the journals record of an item whose outcome
the run never wrote (``provision.unrecorded``): shown as the journal's, never the run's."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kprov.provision.unrecorded import IN_MAPPING, IN_REGISTRY, with_journal_events

ACCOUNT = "3f2a9c1b-7d04-4c1e-9b2a-000000000001"
OTHER = "3f2a9c1b-7d04-4c1e-9b2a-000000000002"
CLASS = "9c2e41d0-7a13-4f00-8000-000000000001"
REG = "5b1d0000-0000-4000-8000-000000000001"
MAPPING_HEADER = "external_user_id,account_id,created_at,sis_id,status\n"
REGISTRY_HEADER = "account_id,instance_id,type,registration_id,external_user_id,created_at,status\n"
INSTANCES_HEADER = "key,instance_id,graph_id,name,start_date,end_date,created_at,status\n"


def item(action: str, event: str, person: str = "p1", **more: Any) -> dict[str, Any]:
    base = {"run_id": "kprov-killed", "time": "2026-12-01T02:00:00Z", "os_user": "kprov",
            "host": "sis-01", "action": action, "event": event, "outcome": None, "role": "learner",
            "person": person, "instance": "alg", "instance_id": "", "account_id": "",
            "registration_id": "", "origin": "alg.csv:2", "reason": "not in the mapping",
            "change": "", "detail": "", "recorded_by": "ledger"}  # fmt: skip
    return {**base, **more}


def state(tmp_path: Path, mapping: str = "", registry: str = "", instances: str = "") -> Path:
    (tmp_path / "mapping.csv").write_text(MAPPING_HEADER + mapping)
    (tmp_path / "registrations.csv").write_text(REGISTRY_HEADER + registry)
    (tmp_path / "instances.csv").write_text(INSTANCES_HEADER + instances)
    return tmp_path


def run(tmp_path: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return with_journal_events(events, tmp_path / "mapping.csv", tmp_path)


def test_an_unfinished_creation_is_followed_by_the_mapping_row_that_records_it(
    tmp_path: Path,
) -> None:
    state(tmp_path, f"p0,{OTHER},2026-11-01T02:00:00Z,,created\n"
                    f"p1,{ACCOUNT.upper()},2026-12-01T02:00:03Z,s-1,created\n"
                    f"p1,{ACCOUNT},2026-12-02T02:00:03Z,s-1,disabled\n")  # fmt: skip
    unfinished = item("create_account", "unfinished")
    events = run(tmp_path, [unfinished, item("register", "registered", instance_id=CLASS)])
    assert [e["event"] for e in events] == ["unfinished", IN_MAPPING, "registered"]
    told = events[1]
    assert told["account_id"] == ACCOUNT and told["origin"] == "mapping.csv:3"
    assert told["time"] == "2026-12-01T02:00:03Z" and told["recorded_by"] == "journal"
    assert told["run_id"] == "kprov-killed" and told["outcome"] is None and told["reason"] == ""
    assert "ended before recording its outcome" in told["detail"]
    assert set(told) == set(unfinished)  # the envelope's events keep one shape


def test_nothing_is_added_once_an_item_has_its_outcome_or_the_journals_say_nothing(
    tmp_path: Path,
) -> None:
    state(tmp_path, f"p1,{ACCOUNT},2026-12-01T02:00:03Z,,created\n",
          f"{ACCOUNT},{CLASS},learner,,p1,2026-12-01T02:00:04Z,sent\n"
          f"{ACCOUNT},{CLASS},learner,{REG},p2,2026-12-01T02:00:04Z,registered\n")  # fmt: skip
    later = [item("create_account", "unfinished"), item("create_account", "created")]
    assert run(tmp_path, later) == later  # a later run recorded it
    asked = [
        item("create_account", "unfinished", person="p9"),  # never made
        item("register", "unfinished", instance_id=CLASS),
    ]  # sent, never answered
    assert run(tmp_path, asked) == asked


def test_a_registration_is_told_by_its_last_row_and_a_new_class_found_by_its_key(
    tmp_path: Path,
) -> None:
    state(
        tmp_path,
        registry=f"{ACCOUNT},{CLASS},learner,{OTHER},p1,2026-09-01T02:00:00Z,registered\n"
        f"{ACCOUNT},{CLASS},learner,{OTHER},p1,2026-10-01T02:00:00Z,removed\n"
        f"{ACCOUNT},{CLASS.upper()},learner,,p1,2026-12-01T02:00:05Z,sent\n"
        f"{ACCOUNT},{CLASS},learner,{REG},p1,2026-12-01T02:00:06Z,registered\n",
        instances=f"alg,{CLASS},g-1,Algebra,,,2026-12-01T02:00:01Z,created\n",
    )
    events = run(tmp_path, [item("register", "unfinished")])  # its class made in the run
    assert [e["event"] for e in events] == ["unfinished", IN_REGISTRY]
    assert events[1]["registration_id"] == REG and events[1]["origin"] == "registrations.csv:5"
    assert events[1]["instance_id"] == CLASS
    with (tmp_path / "registrations.csv").open("a") as registry:
        registry.write(f"{ACCOUNT},{CLASS},learner,{REG},p1,2026-12-02T02:00:00Z,removed\n")
    assert len(run(tmp_path, [item("register", "unfinished")])) == 1  # removed since


def test_odd_or_damaged_journals_add_no_time_or_nothing_and_never_fail_the_view(
    tmp_path: Path,
) -> None:
    state(tmp_path, f"p1,{ACCOUNT},yesterday =cmd|' /C calc'!A0,,created\n")
    events = run(tmp_path, [item("create_account", "unfinished")])
    assert events[1]["time"] is None and events[1]["event"] == IN_MAPPING
    (tmp_path / "mapping.csv").write_bytes(b"\xff\xfe not a mapping\n")
    assert len(run(tmp_path, [item("create_account", "unfinished")])) == 1
    (tmp_path / "mapping.csv").unlink()
    assert len(run(tmp_path, [item("create_account", "unfinished")])) == 1


def test_the_search_finds_the_right_line_past_quoted_cells_look_alikes_and_blocks(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from kprov.provision import unrecorded

    monkeypatch.setattr(unrecorded, "_BLOCK", 64)  # lines straddle every block's end
    rows = [f"p1{n},{OTHER},2026-11-01T02:00:00Z,p1,created\n" for n in range(20)]  # look-alikes
    state(tmp_path, "".join(rows) + f"p1,{ACCOUNT},2026-12-01T02:00:03Z,,created\n")
    events = run(tmp_path, [item("create_account", "unfinished")])
    assert (events[1]["origin"], events[1]["account_id"]) == ("mapping.csv:22", ACCOUNT)
    quoted = f'"a,\nb",{OTHER},2026-11-01T02:00:00Z,,created\n'  # a cell over two lines
    state(tmp_path, quoted + f"p1,{ACCOUNT},2026-12-01T02:00:03Z,,created\n")
    events = run(tmp_path, [item("create_account", "unfinished")])
    assert events[1]["origin"] == "mapping.csv:4"  # read row by row: the file's line
    state(tmp_path, f"p1,{ACCOUNT},2026-12-01T02:00:03Z,\r,created\n")  # damaged: says nothing
    assert len(run(tmp_path, [item("create_account", "unfinished")])) == 1


def test_a_role_change_the_run_never_sent_is_not_told_by_the_registration_it_replaces(
    tmp_path: Path,
) -> None:
    # registered as a learner in September; a killed run meant to remove that registration
    # and register the person as an instructor, and sent neither
    state(
        tmp_path, registry=f"{ACCOUNT},{CLASS},learner,{REG},p1,2026-09-01T02:00:00Z,registered\n"
    )
    change = {"instance_id": CLASS, "role": "instructor", "change": "role change"}
    asked = [item("unregister", "unfinished", **change), item("register", "unfinished", **change)]
    assert run(tmp_path, asked) == asked
    dated = [item("register", "unfinished", instance_id=CLASS)]  # learner, but older than it
    assert run(tmp_path, dated) == dated


def test_a_mapping_row_older_than_the_run_does_not_tell_its_creation(tmp_path: Path) -> None:
    # the run made p1's account (recovered: the API knew it) while its mapping lacked p1 (an
    # old backup); a newer backup restored since holds p1's row of September, before that run
    older = f"p1,{OTHER},2026-09-01T02:00:00Z,,created\n"
    state(tmp_path, older + f"p1,{ACCOUNT},2026-12-01T02:00:04Z,,recovered\n")
    events = run(tmp_path, [item("create_account", "unfinished")])
    assert (events[1]["origin"], events[1]["account_id"]) == ("mapping.csv:3", ACCOUNT)
    state(tmp_path, older)  # only the older row: nothing the run did is recorded
    assert len(run(tmp_path, [item("create_account", "unfinished")])) == 1


def test_a_registration_noted_later_is_told_by_the_row_that_registered_it(
    tmp_path: Path,
) -> None:
    rows = [f"{ACCOUNT},{CLASS},learner,,p1,2026-12-01T02:00:05Z,sent",
            f"{ACCOUNT},{CLASS},learner,,p1,2026-12-01T02:00:06Z,registered",
            f"{ACCOUNT},{CLASS},learner,,p1,2026-12-02T02:00:00Z,noted"]  # fmt: skip
    state(tmp_path, registry="".join(row + "\n" for row in rows))
    events = run(tmp_path, [item("register", "unfinished", instance_id=CLASS)])
    assert [e["event"] for e in events] == ["unfinished", IN_REGISTRY]
    assert events[1]["origin"] == "registrations.csv:3"  # not the notice, a night later
    assert events[1]["time"] == "2026-12-01T02:00:06Z"


def test_an_item_of_a_run_still_running_is_pending_not_ended(tmp_path: Path) -> None:
    state(tmp_path, f"p1,{ACCOUNT},2026-12-01T02:00:03Z,,created\n",
          f"{ACCOUNT},{CLASS},learner,{REG},p1,2026-12-01T02:00:06Z,registered\n")  # fmt: skip
    asked = [
        item("create_account", "unfinished"),
        item("register", "unfinished", instance_id=CLASS),
    ]
    live = with_journal_events(asked, tmp_path / "mapping.csv", tmp_path, running={"kprov-killed"})
    assert live == asked  # its run records their outcomes: nothing "ended before" them
    assert len(run(tmp_path, asked)) == 4


def test_history_person_names_no_end_for_a_run_that_holds_the_lock_and_lives(
    tmp_path: Path,
) -> None:
    from kprov.cli.history import _person
    from kprov.state.ledger import Ledger, RunStart

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    state(tmp_path, f"p1,{ACCOUNT},{stamp},,created\n")
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    host = socket.gethostname()
    ledger.begin_run(RunStart("kprov-live", "sync", "apply", time.time() - 1, "ops", host,
                              os.getpid(), "0.4.0", "prod", "https://x.test/v0"))  # fmt: skip
    ledger.add_items("kprov-live", [(0, "create_account", "p1", "", "learner", "alg", "Alg", "",
                                     "", "", "alg.csv", 2, "not in the mapping", "", None, 0,
                                     "")])  # fmt: skip
    settings = SimpleNamespace(mapping_path=tmp_path / "mapping.csv", state_dir=tmp_path)
    lock = tmp_path / "kprov.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": host}))  # this process runs it
    try:
        shown = _person(ledger, "p1", None, settings)  # type: ignore[arg-type]
        assert [e["event"] for e in shown.data()["events"]] == ["running"]  # as the run list
        lock.write_text("")  # released: the run was killed
        shown = _person(ledger, "p1", None, settings)  # type: ignore[arg-type]
        assert [e["event"] for e in shown.data()["events"]] == ["unfinished", IN_MAPPING]
    finally:
        ledger.close()


class _Counted(str):
    """A block of journal text that adds up how much of it ``count`` scans."""

    scanned = 0

    def __add__(self, other: str) -> _Counted:
        return _Counted(str.__add__(self, other))

    def count(self, sub: str, start: Any = 0, end: Any = None) -> int:
        _Counted.scanned += (len(self) if end is None else end) - start
        return str.count(self, sub, start, end)


def test_a_short_id_on_every_line_is_searched_in_one_pass_not_one_per_line(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from contextlib import contextmanager
    from io import StringIO

    from kprov.state.mapping import MappingJournal

    # "12" is on every line of December (2026-12-01): each match counted the lines before it
    # from the block's start, a quadratic search (40,000 lines: 35 s for `history --person 12`)
    rows = [f"p{n},{OTHER},2026-12-01T02:00:00Z,,created\n" for n in range(2000)]
    state(tmp_path, "".join(rows) + f"12,{ACCOUNT},2026-12-01T02:00:03Z,,created\n")
    text = (tmp_path / "mapping.csv").read_text()

    class Handle(StringIO):
        def read(self, size: int | None = -1) -> str:
            return _Counted(super().read(size))

    @contextmanager
    def counted(self: MappingJournal, offset: int = 0) -> Any:
        yield Handle(text)

    monkeypatch.setattr(MappingJournal, "text", counted)
    _Counted.scanned = 0
    events = run(tmp_path, [item("create_account", "unfinished", person="12")])
    assert events[1]["origin"] == "mapping.csv:2002" and events[1]["account_id"] == ACCOUNT
    assert _Counted.scanned <= 3 * len(text)  # quadratic: about 1,000 times the text


def test_an_empty_person_is_refused_not_everyone_without_a_sis_id(
    isolated_env: Path, monkeypatch: Any
) -> None:
    from kprov.state.ledger import Ledger, RunStart
    from tests.helpers import run_cli

    monkeypatch.setenv("KPROV_BASE_URL", "https://api.example.test/v0")
    monkeypatch.setenv("KPROV_API_KEY", "key")
    (isolated_env / "state").mkdir(mode=0o700)
    ledger = Ledger.open(isolated_env / "state")
    assert ledger is not None
    ledger.begin_run(RunStart("kprov-1", "sync", "apply", time.time(), "ops", "sis-01"))
    rows = [(n, "create_account", f"p{n}", "", "learner", "alg", "Alg", "", "", "", "alg.csv",
             n + 2, "not in the mapping", "", None, 0, "") for n in range(2)]  # fmt: skip
    ledger.add_items("kprov-1", rows)
    ledger.close()
    assert len(json.loads(run_cli("history", "--person", "p1", "--json").stdout)["events"]) == 1
    for blank in ("", "  "):  # every item without a SIS id has '' for one: two people here
        refused = run_cli("history", "--person", blank, "--json")
        assert refused.exit_code == 2 and "--person needs an id" in refused.stdout
