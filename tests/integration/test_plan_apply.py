"""One plan, reviewed as a file, applied exactly; one envelope and one exit code everywhere."""

from __future__ import annotations

import csv
import json
import re
import shlex
import uuid
from pathlib import Path

import pytest

from tests.conftest import Sandbox
from tests.helpers import TERMINAL, run_cli
from tests.semesters import Semester, first_night


def changed_night(tmp_path: Path, box: Sandbox) -> Semester:
    """The sample semester, then a night where a-0 left and a-new joined class alg."""
    semester = first_night(tmp_path, box)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(1, 20)] + ["a-new"])
    semester.write()
    return semester


def test_a_saved_plan_names_its_people_and_is_applied_exactly(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    plan_file, planned = tmp_path / "tonight.json", tmp_path / "planned.csv"
    shown = run_cli(
        "sync", str(semester.write()), "--prune", "--plan", "--out", str(plan_file),
        "--report", str(planned),
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "would_register: learner a-new in alg" in shown.stdout
    assert "would_remove: learner a-0 in alg" in shown.stdout
    saved = json.loads(plan_file.read_text())
    assert sorted((i["action"], i.get("external_id", "")) for i in saved["items"]) == [
        ("create_account", "a-new"),
        ("register", "a-new"),
        ("unregister", "a-0"),
    ]
    assert (plan_file.stat().st_mode & 0o777) == 0o600
    writes = sandbox_env.write_requests()
    report = tmp_path / "applied.csv"
    applied = run_cli("apply", str(plan_file), "--report", str(report))
    assert applied.exit_code == 0, applied.output
    assert sandbox_env.enrolments() == semester.expected()
    assert sandbox_env.write_requests() == writes + 3  # one batch, one registration, one removal
    rows = {(r["external_user_id"], r["outcome"]) for r in csv.DictReader(report.open())}
    assert ("a-0", "removed") in rows and ("a-new", "registered") in rows
    # every line's fate, the lines left alone included, as the plan's own report lists them
    line_fields = ("file", "line", "external_user_id", "role", "instance", "outcome")
    kept_at_apply, kept_at_plan = (
        sorted(tuple(r[f] for f in line_fields) for r in csv.DictReader(f.open())
               if r["outcome"] == "already_registered")
        for f in (report, planned)
    )  # fmt: skip
    assert kept_at_apply == kept_at_plan
    assert {(e, r) for _f, _l, e, r, _i, _o in kept_at_apply} == {
        (person, role) for person, _class, role in semester.expected() if person != "a-new"
    }


def test_the_command_a_saved_plan_suggests_applies_it_whatever_the_current_profile(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--plan --out` prints how to apply the plan; pasted as printed, it must work even when
    the config file's current profile is another one (it names the plan's profile)."""
    semester = changed_night(tmp_path, sandbox_env)
    plan_file = tmp_path / "tonight's plan.json"
    shown = run_cli("sync", str(semester.write()), "--prune", "--plan", "--out", str(plan_file))
    suggested = re.search(r"apply it with `(.+)`", shown.stderr)
    assert suggested is not None, shown.stderr
    argv = shlex.split(suggested.group(1))
    assert argv[:3] == ["kprov", "--profile", "default"] and argv[-1] == str(plan_file)
    monkeypatch.setenv("KPROV_PROFILE", "someone-elses")  # what a current profile would do
    applied = run_cli(*argv[1:])
    assert applied.exit_code == 0, applied.output
    assert sandbox_env.enrolments() == semester.expected()


def test_a_plan_made_before_another_run_is_stale_and_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    plan_file = tmp_path / "old.json"
    run_cli("sync", str(semester.write()), "--prune", "--plan", "--out", str(plan_file))
    assert run_cli("sync", str(semester.write())).exit_code == 0  # another run happened
    writes = sandbox_env.write_requests()
    refused = run_cli("apply", str(plan_file), "--json")
    assert refused.exit_code == 8
    envelope = json.loads(refused.stdout)
    assert (envelope["ok"], envelope["error"]["code"]) == (False, 8)
    assert "changed since the plan was made" in refused.stderr
    assert sandbox_env.write_requests() == writes


def test_an_edited_plan_is_refused_and_a_plan_for_another_profile_too(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    plan_file = tmp_path / "plan.json"
    run_cli("sync", str(semester.write()), "--prune", "--plan", "--out", str(plan_file))
    document = json.loads(plan_file.read_text())
    edited = tmp_path / "edited.json"
    document["items"][0]["external_id"] = "someone-else"
    edited.write_text(json.dumps(document))
    assert run_cli("apply", str(edited)).exit_code == 2
    monkeypatch.setenv("KPROV_BASE_URL", sandbox_env.base_url.replace("127.0.0.1", "localhost"))
    other = run_cli("apply", str(plan_file))
    assert other.exit_code == 8 and "made for profile" in other.stderr
    assert ("a-new", "Class alg", "learner") not in sandbox_env.enrolments()


def test_detailed_exitcode_says_whether_a_plan_has_changes(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    manifest = str(semester.write())
    assert run_cli("sync", manifest, "--plan", "--detailed-exitcode").exit_code == 10
    assert run_cli("sync", manifest).exit_code == 0
    assert run_cli("sync", manifest, "--plan", "--detailed-exitcode").exit_code == 0
    assert run_cli("sync", manifest, "--detailed-exitcode").exit_code == 2  # needs --plan


def test_plan_report_and_dry_run_mean_the_same_and_write_the_file(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    writes = sandbox_env.write_requests()
    for flag in ("--plan", "--dry-run"):
        report = tmp_path / f"plan{flag}.html"
        result = run_cli("sync", str(semester.write()), "--prune", flag, "--report", str(report))
        assert result.exit_code == 0, result.output
        page = report.read_text()
        assert "<h2>Classes (" in page and "a-0" in page and "would_remove" in page
        assert "src=" not in page and "href=" not in page  # one self-contained file
    assert sandbox_env.write_requests() == writes


def test_a_bad_report_name_is_refused_before_anything_is_sent(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1"])
    result = run_cli("sync", str(semester.write()), "--report", str(tmp_path / "night.txt"))
    assert result.exit_code == 2
    assert sandbox_env.requests() == {}


def test_prune_report_and_log_name_who_was_removed(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    report, log = tmp_path / "night.json", tmp_path / "kprov.log"
    done = run_cli(
        "sync", str(semester.write()), "--prune", "--report", str(report), "--log-file", str(log)
    )
    assert done.exit_code == 0, done.output
    removed = [r for r in json.loads(report.read_text()) if r["outcome"] == "removed"]
    assert [(r["external_user_id"], r["instance"]) for r in removed] == [("a-0", "alg")]
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["external_user_id"] for r in record["removed"]] == ["a-0"]
    assert (log.stat().st_mode & 0o777) == 0o600


def test_global_options_work_after_the_command(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    result = run_cli("sync", str(semester.write()), "--plan", "--json", "--profile", "default")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mode"] == "plan"
    quiet = run_cli("sync", str(semester.write()), "--plan", "-q")
    assert (quiet.exit_code, quiet.stdout) == (0, "")


def test_usage_errors_with_json_print_the_envelope(sandbox_env: Sandbox) -> None:
    result = run_cli("sync", "--no-such-option", "--json")
    assert result.exit_code == 2
    envelope = json.loads(result.stdout)
    assert (envelope["ok"], envelope["exit_code"], envelope["error"]["code"]) == (False, 2, 2)
    assert "no-such-option" in envelope["error"]["message"]


def test_not_found_has_its_own_exit_code(sandbox_env: Sandbox) -> None:
    result = run_cli("instances", "get", str(uuid.uuid4()))
    assert result.exit_code == 7
    assert "Traceback" not in result.output


def test_instance_option_and_an_instance_column_together_are_refused(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id,instance\ns-1,bio\n", encoding="utf-8")
    result = run_cli("register", "--instance", "alg", str(roster))
    assert result.exit_code == 2
    assert "'bio'" in result.stderr and "'alg'" in result.stderr
    assert sandbox_env.requests() == {}


def test_sync_prune_asks_on_a_terminal_and_yes_skips_the_question(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = changed_night(tmp_path, sandbox_env)
    declined = run_cli("sync", str(semester.write()), "--prune", input="n\n", env=TERMINAL)
    assert declined.exit_code == 2 and "1 registration(s) would be removed" in declined.stderr
    assert "learner a-0 in alg" in declined.stderr  # the question is asked on stderr
    assert "not confirmed; nothing was sent" in declined.stderr
    assert ("a-0", "Class alg", "learner") in sandbox_env.enrolments()
    accepted = run_cli("sync", str(semester.write()), "--prune", "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert sandbox_env.enrolments() == semester.expected()


def test_a_removal_whose_registration_id_is_unknown_is_held_and_said_on_every_prune_run(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:

    from kprov.state.registry import Registry

    semester = changed_night(tmp_path, sandbox_env)  # a-0 left class alg
    registry = Registry.open(state_dir)
    [record] = [
        r for r in registry.registration_index.active.values() if r.external_user_id == "a-0"
    ]
    unresolved = record._replace(registration_id="")  # confirmed without id: a row as a lost
    registry.registrations.record(unresolved, registry.registration_index)  # answer leaves it
    registry.close()
    first = run_cli("sync", str(semester.write()), "--prune")
    assert first.exit_code == 0, first.output
    assert "a-0 (learner) in alg" in first.stderr and "said once" in first.stderr
    assert "without their id (1 of them recorded before this run)" in first.stderr
    assert "kprov registrations resolve" in first.stderr
    assert ("a-0", "Class alg", "learner") in sandbox_env.enrolments()  # never guessed away
    again = run_cli("sync", str(semester.write()), "--prune")  # the notice is not repeated,
    assert again.exit_code == 0 and "said once" not in again.stderr  # but the stuck removal is
    assert "1 removal(s) cannot be sent" in again.stderr and "held 1" in again.stdout
    quiet = run_cli("sync", str(semester.write()))  # without --prune nothing is asked: silence
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
    plan = json.loads(run_cli("sync", str(semester.write()), "--prune", "--plan", "--json").stdout)
    [held] = plan["items"]
    assert held["action"] == "hold" and "registrations resolve" in held["reason"]


def test_an_instance_created_without_a_key_gets_one_and_state_stays_loadable(
    sandbox_env: Sandbox,
) -> None:
    created = run_cli("instances", "create", "--graph-id", "g", "--name", "No key", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)["key"]
    assert key.startswith("instance-")
    listed = run_cli("instances", "list")  # the registry still loads: no damaged row
    assert listed.exit_code == 0 and key in listed.stdout
    assert "empty duplicate" not in listed.stderr  # the intent was closed by the record


@pytest.mark.parametrize(
    "words",
    [
        ("instances", "list"),
        ("registrations", "unresolved"),
        ("profile", "list"),
        ("mapping", "export"),
    ],
)
def test_the_global_json_option_gives_every_command_the_envelope(
    sandbox_env: Sandbox, words: tuple[str, ...]
) -> None:
    for args in (("--json", *words), (*words, "--json")):
        result = run_cli(*args)
        assert result.exit_code == 0, result.output
        envelope = json.loads(result.stdout)
        assert (envelope["ok"], envelope["command"], envelope["error"]) == (
            True,
            " ".join(words),
            None,
        )


def test_every_failure_of_a_logged_run_reaches_the_log_and_output_errors_are_exit_9(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "kprov.log"
    broken = tmp_path / "broken.yaml"
    broken.write_text("instances: [oops\n")
    assert run_cli("sync", str(broken), "--log-file", str(log)).exit_code == 2
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert (record["stage"], record["exit_code"], record["error"]["code"]) == ("error", 2, 2)
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1"])
    device = run_cli("sync", str(semester.write()), "--plan", "--out", "/dev/full")
    assert device.exit_code == 9 and "not a regular file" in device.stderr  # never replaced
    assert Path("/dev/full").is_char_device()
    typo = run_cli("sync", str(semester.write()), "--report", str(tmp_path / "nope" / "r.csv"))
    assert typo.exit_code == 2 and "does not exist" in typo.stderr
    assert not (tmp_path / "nope").exists() and sandbox_env.write_requests() == 0


def test_a_plan_whose_removal_limit_was_edited_to_match_is_still_refused(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    from kprov.provision.saved_plan import _items_digest

    semester = changed_night(tmp_path, sandbox_env)
    plan_file = tmp_path / "plan.json"
    run_cli("sync", str(semester.write()), "--prune", "--plan", "--out", str(plan_file))
    document = json.loads(plan_file.read_text())
    victim = dict(next(i for i in document["items"] if i["action"] == "unregister"))
    victim["external_id"] = "a-5"
    document["items"].append(victim)  # one more removal, with a recomputed digest ...
    document["items_digest"] = _items_digest(document["items"])
    plan_file.write_text(json.dumps(document))  # ... but the limit still says one removal
    refused = run_cli("apply", str(plan_file))
    assert refused.exit_code == 2 and "removal limit does not match" in refused.stderr


def test_a_clean_sync_is_silent_under_cron_but_not_on_a_terminal(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = first_night(tmp_path, sandbox_env)
    cron = run_cli("sync", str(semester.write()))
    assert (cron.exit_code, cron.stdout, cron.stderr) == (0, "", "")
    watched = run_cli("sync", str(semester.write()), env=TERMINAL)
    assert watched.exit_code == 0 and "already registered" in watched.stdout


def test_a_usage_error_envelope_names_the_command_not_its_arguments(tmp_path: Path) -> None:
    result = run_cli(
        "--json", "--profile", "p", "accounts", "import", "secret-roster.csv", "-c", "x"
    )
    assert result.exit_code == 2
    envelope = json.loads(result.stdout)
    assert envelope["command"] == "accounts import" and "secret-roster" not in result.stdout


def test_a_reader_that_stops_early_ends_kprov_quietly_with_141(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    import subprocess
    import sys

    rows = "".join(f"s-{i},{uuid.uuid4()},2026-01-01T00:00:00Z,,created\n" for i in range(30000))
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mapping = state_dir / "mapping.csv"
    mapping.write_text("external_user_id,account_id,created_at,sis_id,status\n" + rows)
    mapping.chmod(0o600)
    reader = subprocess.Popen(
        [sys.executable, "-m", "kprov", "mapping", "export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stdout.readline().startswith(b"external_user_id")
    reader.stdout.close()  # `| head -1`
    _, stderr = reader.communicate(timeout=60)
    assert (reader.returncode, stderr) == (141, b"")


def test_a_plan_file_nested_thousands_deep_is_bad_input_not_a_traceback(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = run_cli("apply", str(deep))
    assert result.exit_code == 2 and "nested too deep" in result.stderr
