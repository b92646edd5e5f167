"""Adversary (issue 19): the metrics file as the documented alert reads it.

docs/history.md's alert is `time() - kprov_last_success_timestamp_seconds{command="sync"} >
26 * 3600`. A series that is absent makes that expression empty: the alert never fires. So
every night's file must carry the last success, whatever stopped that night -- bad input
(exit 2, refused before its record began) included: a district whose export is malformed
every night must be paged after 26 h, not never.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Sandbox
from tests.helpers import run_cli
from tests.prometheus_text import parse
from tests.semesters import Semester


def test_a_night_refused_for_bad_input_still_says_when_sync_last_succeeded(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    metrics = tmp_path / "kprov.prom"
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    manifest = semester.write()
    good = run_cli("sync", str(manifest), "--metrics-file", str(metrics))
    assert good.exit_code == 0, good.output
    [(labels, succeeded)] = parse(metrics.read_text())[0]["kprov_last_success_timestamp_seconds"]
    assert labels == {"profile": "default", "command": "sync"}

    manifest.write_text(manifest.read_text() + "  - key: [unclosed\n")  # tonight's is broken
    bad = run_cli("sync", str(manifest), "--metrics-file", str(metrics))
    assert bad.exit_code == 2
    samples = parse(metrics.read_text())[0]
    assert samples["kprov_last_run_exit_code"] == [(labels, 2)]
    assert samples["kprov_last_success_timestamp_seconds"] == [(labels, succeeded)]


def test_a_night_stopped_by_the_lock_still_says_when_sync_last_succeeded(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    from kprov.state.lock import StateLock

    metrics = tmp_path / "kprov.prom"
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    manifest = str(semester.write())
    assert run_cli("sync", manifest, "--metrics-file", str(metrics)).exit_code == 0
    [(labels, succeeded)] = parse(metrics.read_text())[0]["kprov_last_success_timestamp_seconds"]
    with StateLock(state_dir):  # a stuck run of last night's still holds it
        locked = run_cli("sync", manifest, "--metrics-file", str(metrics))
    assert locked.exit_code == 5, locked.output
    samples = parse(metrics.read_text())[0]
    assert samples["kprov_last_run_exit_code"] == [(labels, 5)]
    assert samples["kprov_last_success_timestamp_seconds"] == [(labels, succeeded)]
