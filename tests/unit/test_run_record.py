"""What a run's record holds, and how it ends up in a chat channel and a metrics file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kprov.provision.plan import MOVED, Action, InstanceSpec, Item, Plan
from kprov.provision.recording import credential_check_due
from kprov.provision.run_record import (
    event_of,
    input_files,
    item_from_row,
    item_rows,
    resume_command,
    scrub_argv,
)
from kprov.provision.run_summary import RunSummary, metrics_text, needs_notice, notification
from kprov.rosters.model import Origin
from kprov.state.ledger_writes import ITEM_COLUMNS
from tests.prometheus_text import FormatError, parse

HOOK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_the_command_line_is_kept_without_anything_that_can_hold_a_secret() -> None:
    url = "https://user:pw@host.example/x?sig=1"
    argv = ["--profile", "prod", "sync", "s.yaml", "--notify", HOOK, "--notify=" + HOOK,
            "--log-file", "/var/log/k.log", url, "s3cr3t-ok"]  # fmt: skip
    kept = scrub_argv(argv, env={"KPROV_API_SECRET": "s3cr3t"})
    assert kept == ["--profile", "prod", "sync", "s.yaml", "--notify", "<hidden>",
                    "--notify=<hidden>", "--log-file", "/var/log/k.log",
                    "https://host.example/...", "<hidden>"]  # fmt: skip
    assert "XXXX" not in json.dumps(kept) and "pw" not in json.dumps(kept)
    assert resume_command(kept[:7]) == "kprov --profile prod sync s.yaml"


def test_inputs_are_fingerprinted_files_bundle_members_and_stdin_by_name(tmp_path: Path) -> None:
    manifest = tmp_path / "s.yaml"
    manifest.write_text("instances: []\n")
    bundle = tmp_path / "oneroster"
    bundle.mkdir()
    (bundle / "users.csv").write_text("sourcedId\n")
    (bundle / "classes.csv").write_text("sourcedId\n")
    archive = tmp_path / "sds.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    found = input_files([str(manifest), str(bundle), str(archive), "-", str(fifo)],
                        first="manifest")  # fmt: skip
    shown = [(f.kind, Path(f.path).name, f.size) for f in found]
    assert shown == [
        ("manifest", "s.yaml", 14), ("bundle", "oneroster", None), ("member", "classes.csv", 10),
        ("member", "users.csv", 10), ("bundle", "sds.zip", 22), ("stdin", "<stdin>", None),
        ("roster", "pipe.csv", None),  # a FIFO is never read (it could hang the run)
    ]  # fmt: skip
    import hashlib

    assert found[0].sha256 == hashlib.sha256(b"instances: []\n").hexdigest()


def test_a_ledger_row_gives_back_the_exact_item() -> None:
    items = (
        Item(
            Action.CREATE_INSTANCE,
            instance="alg1-p3",
            spec=InstanceSpec("g", "Alg", "2026-09-01"),
            reason="not created yet",
        ),
        Item(
            Action.UNREGISTER,
            "s-1",
            "learner",
            "alg1-p2",
            "i-2",
            "a-1",
            "r-1",
            "100210",
            Origin("s.yaml", 12),
            "moved alg1-p2 → alg1-p3",
            change=MOVED,
        ),
        Item(
            Action.REGISTER,
            "t-1",
            "instructor",
            "alg1-p3",
            role_change=True,
            origin=Origin("p3.csv", 2),
        ),
    )
    plan = Plan("sync", items)
    for row in item_rows(plan, {"alg1-p3": "Alg"}, {"s-1": "ignored: the item has it"}):
        record = dict(zip(ITEM_COLUMNS, row, strict=True))
        assert item_from_row(record) == items[record["seq"]]


def test_event_words_name_moves_and_unfinished_runs() -> None:
    assert event_of("registered", MOVED) == "moved"
    assert event_of("removed", "instructor_changed") == "instructor changed"
    assert event_of("failed", MOVED) == "failed"
    assert event_of(None, "") == "unfinished"


def test_a_quiet_night_checks_the_credential_only_when_it_is_due() -> None:
    now = 1_800_000_000.0
    assert credential_check_due(None, now, 20)  # nothing ever succeeded (as far as we know)
    assert not credential_check_due(now - 19 * 3600, now, 20)
    assert credential_check_due(now - 20 * 3600, now, 20)
    assert not credential_check_due(None, now, 0)  # switched off


def summary(**changes: object) -> RunSummary:
    base = dict(
        run_id="kprov-abc", command="sync", profile='prod "east"', api_host="https://api.x/...",
        os_user="ops", host="sis-01", started_at=1_800_000_000.0, ended_at=1_800_000_012.5,
        exit_code=1, counts={"registered": 3, "failed": 1}, requests=9, rate_limited=2,
        failures=["s.csv:4: <!channel> s-1 in alg: \x1b[31mrefused"], resume="kprov sync s.yaml",
        last_clean=1_799_990_000.0,
    )  # fmt: skip
    base.update(changes)
    return RunSummary(**base)  # type: ignore[arg-type]


def test_a_notification_names_the_run_and_cannot_ping_a_channel() -> None:
    document = notification(summary())
    assert document["run_id"] == "kprov-abc" and document["exit_code"] == 1
    assert document["meaning"].startswith("some items failed")
    assert "<!channel>" not in document["text"] and "&lt;!channel&gt;" in document["text"]
    assert "\x1b" not in document["text"]
    assert "kprov sync s.yaml" in document["text"]
    assert needs_notice(summary(), "failure")
    assert not needs_notice(summary(exit_code=0, counts={"registered": 3}), "failure")
    assert needs_notice(summary(exit_code=0, counts={"withheld": 2}), "failure")
    assert needs_notice(summary(exit_code=0, counts={}), "always")


def test_the_metrics_file_is_strict_prometheus_text() -> None:
    samples, types, helps = parse(metrics_text(summary()))
    labels = {"profile": 'prod "east"', "command": "sync"}
    assert samples["kprov_last_run_exit_code"] == [(labels, 1.0)]
    assert samples["kprov_last_run_duration_seconds"] == [(labels, 12.5)]
    assert samples["kprov_last_run_rate_limited_responses"] == [(labels, 2.0)]
    assert samples["kprov_last_success_timestamp_seconds"] == [(labels, 1_799_990_000.0)]
    by_outcome = {s[0]["outcome"]: s[1] for s in samples["kprov_last_run_items"]}
    assert by_outcome["failed"] == 1 and by_outcome["removed"] == 0
    assert set(types.values()) == {"gauge"} and set(types) == set(samples) == set(helps)
    never = parse(metrics_text(summary(last_clean=None)))[0]
    assert "kprov_last_success_timestamp_seconds" not in never


@pytest.mark.parametrize(
    "text",
    [
        "a 1",
        'a{b="1"} 1 1700000000\n',
        "a 1\nb 2\na 3\n",
        "# TYPE a gauge\n# TYPE a gauge\n",
        'a{b="x\\q"} 1\n',
        "1a 2\n",
    ],
)
def test_the_test_reader_is_strict(text: str) -> None:
    with pytest.raises(FormatError):
        parse(text)
