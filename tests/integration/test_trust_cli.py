"""Trust, round three, as a newcomer meets it: a mistyped base path, a refused secret from a
file, an instance the API no longer has, a mapping with formulas in it, a closed ssh session."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kprov.state.mapping import HEADER
from kprov.state.registry import Registry
from tests.conftest import Sandbox, start_sandbox
from tests.helpers import run_cli
from tests.semesters import ONE_CLASS_MANIFEST


def test_a_base_url_without_the_api_version_is_a_configuration_error(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = sandbox_env.base_url.replace("/v0", "/api/v0")
    monkeypatch.setenv("KPROV_BASE_URL", wrong)
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    result = run_cli("sync", str(manifest))
    assert result.exit_code == 3, result.stderr
    assert f"no token endpoint at {wrong}/oauth/token" in result.stderr
    assert "must be the API's root, ending with the API version (/v0)" in result.stderr
    assert "failed:" not in result.stderr  # not one line per row


def test_a_refused_secret_from_a_file_names_the_file_not_the_keyring(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not-the-secret\n", encoding="utf-8")
    secret.chmod(0o600)
    monkeypatch.delenv("KPROV_API_SECRET")
    monkeypatch.setenv("KPROV_API_SECRET_FILE", str(secret))
    result = run_cli("accounts", "current")
    assert result.exit_code == 3
    assert f"the secret came from file: {secret} (KPROV_API_SECRET_FILE)" in result.stderr
    assert "auth login" not in result.stderr
    shown = run_cli("config", "show")
    assert f"file: {secret} (KPROV_API_SECRET_FILE)" in shown.stdout


def test_an_instance_the_api_does_not_have_can_be_inspected_and_forgotten(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
    assert run_cli("sync", str(manifest)).exit_code == 0
    instance_id = Registry.open(state_dir).instance_index.by_key["c1"].instance_id
    still_there = run_cli("instances", "forget", "c1", "--yes")
    assert still_there.exit_code == 2 and "still has" in still_there.stderr
    with sandbox_env.store.lock:  # gone behind kprov's back (or never issued)
        del sandbox_env.store.instances[instance_id]

    got = run_cli("instances", "get", "c1")
    assert got.exit_code == 7
    assert "`kprov instances forget c1`" in got.stderr
    assert run_cli("instances", "forget", "c1").exit_code == 2  # no terminal, no --yes
    assert run_cli("instances", "forget", "nope", "--yes").exit_code == 2
    forgotten = run_cli("instances", "forget", "c1", "--yes")
    assert forgotten.exit_code == 0, forgotten.stderr
    assert "and 4 registration(s)" in forgotten.stdout
    registry = Registry.open(state_dir)
    assert registry.instance_index.find("c1") is None
    assert not registry.registration_index.active
    runs = json.loads(run_cli("--json", "history").stdout)["runs"]
    assert runs[0]["command"] == "instances forget" and runs[0]["exit_code"] == 0
    shown = json.loads(run_cli("--json", "history", runs[0]["run_id"]).stdout)
    assert (
        sorted(i["action"] for i in shown["items"])
        == ["forget_instance"] + ["forget_registration"] * 4
    )

    again = run_cli("sync", str(manifest))  # the class is made anew, its people registered
    assert again.exit_code == 0, again.stderr
    new_id = Registry.open(state_dir).instance_index.by_key["c1"].instance_id
    with sandbox_env.store.lock:
        registered = [
            r for r in sandbox_env.store.registrations.values()
            if r["learning_instance_id"] == new_id
        ]  # fmt: skip
    assert new_id != instance_id and len(registered) == 4
    assert "duplicate" not in again.stderr


def test_mapping_export_neutralises_formulas_an_older_mapping_holds(
    sandbox_env: Sandbox, state_dir: Path
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    uuid = "828815a2-5038-4352-a681-82c96921ddf5"
    rows = [
        ['=HYPERLINK("http://evil","x")', uuid, "2026", "", "created"],
        ["+SUM(1+1)", uuid.replace("8", "9"), "2026", "@SUM(1)", "created"],
        ["-1", uuid.replace("8", "7"), "2026", "-2+3+cmd|' /C calc'!A0", "created"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([HEADER, *rows])
    (state_dir / "mapping.csv").write_text(buffer.getvalue(), encoding="utf-8")
    exported = run_cli("mapping", "export")
    cells = [c for row in csv.reader(io.StringIO(exported.stdout)) for c in row]
    assert '\'=HYPERLINK("http://evil","x")' in cells and "'+SUM(1+1)" in cells
    assert "'@SUM(1)" in cells and "'-2+3+cmd|' /C calc'!A0" in cells
    assert "-1" in cells  # a plain number is a value
    as_json = json.loads(run_cli("mapping", "export", "--format", "json").stdout)
    assert as_json[0]["external_user_id"] == '=HYPERLINK("http://evil","x")'  # exact, as data


@pytest.mark.slow
def test_sighup_mid_run_stops_like_sigterm_logs_and_keeps_the_state_exact(
    tmp_path: Path, state_dir: Path
) -> None:
    """A closed ssh session: exit 130, the reason said, the --log-file line written."""
    box = start_sandbox(latency_ms=40)
    try:
        people = ", ".join(f"s-{n}" for n in range(120))
        manifest = tmp_path / "semester.yaml"
        manifest.write_text(ONE_CLASS_MANIFEST.replace("s-1, s-2, s-3", people), encoding="utf-8")
        log = tmp_path / "run.log"
        env = {**os.environ, **box.env(), "KPROV_RATE_LIMITS": "off"}
        process = subprocess.Popen(
            [sys.executable, "-m", "kprov", "sync", str(manifest), "-c", "1",
             "--log-file", str(log)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while box.requests().get("POST /registrations", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGHUP)
        _out, err = process.communicate(timeout=20)
    finally:
        box.server.stop()
    assert process.returncode == 130, err
    assert "the terminal hung up (SIGHUP)" in err
    assert json.loads(log.read_text(encoding="utf-8").splitlines()[-1])["exit_code"] == 130
    recorded = {
        r.external_user_id for r in Registry.open(state_dir).registration_index.active.values()
    }
    on_server = {e for e, _i, _t in box.enrolments()}
    assert recorded <= on_server and len(on_server) < 121  # stopped mid-run, nothing false
