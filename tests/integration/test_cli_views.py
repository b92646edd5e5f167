"""Every data command, three ways: the one JSON envelope with --json, tab-separated lines
under a header in a pipe, an aligned table with a header on a terminal (an injected
``Environment``, never a patched isatty). A declined prompt ends with exit 2, "not
confirmed; nothing was sent", with or without --json, and --json keeps stdout one document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox
from tests.helpers import TERMINAL, run_cli

ROSTER = "external_user_id,role,instance\nt-1,instructor,alg1\ns-1,learner,alg1\ns-2,learner,alg1\n"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Data:
    """A data command, the envelope keys it adds, and the header of its table (if it is a
    table: its keys, which name the columns of the pipe's header line)."""

    args: tuple[str, ...]
    keys: frozenset[str]
    header: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The command's words (`instances get`), as the envelope names it."""
        return " ".join(self.args[:1] if self.args[0] == "history" else self.args[:2])


def commands(state_dir: Path) -> list[Data]:
    index = MappingJournal(state_dir / "mapping.csv").load()
    registration = [
        line.split(",")[3]
        for line in (state_dir / "registrations.csv").read_text().splitlines()
        if ",s-1," in line
    ][-1]
    run_id = json.loads(run_cli("history", "--json").stdout)["runs"][0]["run_id"]
    instances = ("key", "instance_id", "registrations", "name")
    regs = ("type", "external_user_id", "account_id", "registration_id")
    return [
        Data(("instances", "list"), frozenset({"instances"}), instances),
        Data(("instances", "get", "alg1"), frozenset({"id", "key", "graph_id", "name"})),
        Data(("registrations", "list", "-i", "alg1"), frozenset({"registrations"}), regs),
        Data(("registrations", "unresolved"), frozenset({"unresolved"}),
             ("instance", "type", "external_user_id", "account_id")),
        Data(("registrations", "get", registration), frozenset({"id", "account_id"})),
        Data(("mapping", "show", "s-1"), frozenset({"rows"}),
             ("external_user_id", "account_id", "created_at", "sis_id", "status")),
        Data(("accounts", "get", "--external", "s-1"), frozenset({"id", "external_user_id"})),
        Data(("accounts", "current"), frozenset({"id", "external_user_id"})),
        Data(("profile", "list"), frozenset({"profiles", "config"}),
             ("current", "name", "base_url", "builtin")),
        Data(("profile", "show", "sandbox"), frozenset({"profile", "config"})),
        Data(("config", "show"), frozenset({"settings"}), ("setting", "value", "source")),
        Data(("auth", "status"), frozenset({"profile", "account_id", "secret_source"})),
        Data(("history",), frozenset({"runs"}), ("when", "run", "who", "command", "counts", "end")),
        Data(("history", run_id), frozenset({"run", "inputs", "items", "items_total"})),
        Data(("history", "--person", "s-1"), frozenset({"person", "events"}),
             ("when", "run", "who", "event", "where", "from", "why")),
        Data(("holds", "list", "--all"), frozenset({"holds"}),
             ("when", "hold", "state", "job", "items", "guards")),
        Data(("mapping", "export"), frozenset({"mapping"})),
    ] if index.account_of["s-1"] else []  # fmt: skip


@pytest.fixture
def registered(sandbox_env: Sandbox, tmp_path: Path, state_dir: Path) -> list[Data]:
    roster = tmp_path / "r.csv"
    roster.write_text(ROSTER)
    result = run_cli("register", str(roster), "--graph-id", "gref-algebra")
    assert result.exit_code == 0, result.output
    journal = state_dir / "registrations.csv"
    last = [line for line in journal.read_text().splitlines() if ",s-2," in line][-1].split(",")
    last[3] = ""  # what an "already registered" after a lost answer leaves: no id
    with journal.open("a") as handle:
        handle.write(",".join(last) + "\n")
    return commands(state_dir)


def test_every_data_command_shows_itself_three_ways(registered: list[Data]) -> None:
    for data in registered:
        _as_json(data)
        if data.header:  # (the other values' views for people: tests/unit/test_cli_shape.py)
            _in_a_pipe(data)
            _on_a_terminal(data)


def _as_json(data: Data) -> None:
    result = run_cli("--json", *data.args)
    assert result.exit_code == 0, (data.args, result.output)
    document = json.loads(result.stdout)  # one document
    assert (document["ok"], document["exit_code"], document["error"]) == (True, 0, None)
    assert document["command"] == data.name
    assert data.keys <= set(document), (data.args, sorted(document))


def _in_a_pipe(data: Data) -> None:
    """Tables: tab-separated lines under a header line of their keys."""
    result = run_cli(*data.args)
    out = result.stdout
    assert result.exit_code == 0 and out, (data.args, result.output)
    assert not ANSI.search(out), data.args  # no styling where nobody looks
    if not data.header:
        return
    lines = out.splitlines()  # (`holds list` has no row here: its header line still is)
    assert lines[0] == "\t".join(data.header), data.args
    assert {line.count("\t") for line in lines} == {len(data.header) - 1}, data.args
    assert len(lines) > 1 or data.args[0] == "holds", data.args


def _on_a_terminal(data: Data) -> None:
    """Tables: aligned columns under a header in capitals, no tab."""
    result = run_cli(*data.args, env=TERMINAL)
    assert result.exit_code == 0, (data.args, result.output)
    lines = ANSI.sub("", result.stdout).splitlines()
    if not data.header or not lines:  # (no hold here: said on stderr, no empty table)
        return
    assert "\t" not in result.stdout, data.args
    assert lines[0].split()[0] in {h.upper() for h in data.header} | {"EXTERNAL"}, data.args
    second = re.search(r"\S\s{2,}(\S)", lines[0])  # where the second column starts
    assert second is not None, data.args
    column = second.start(1)
    for line in lines[1:]:
        if line[:1].strip():  # a row's first line (a folded cell's lines start blank)
            assert line[column - 2 : column] == "  " and line[column] != " ", (data.args, lines)


def test_an_empty_table_keeps_its_header_in_a_pipe_and_says_why_on_stderr(
    sandbox_env: Sandbox,
) -> None:
    result = run_cli("holds", "list")
    assert result.exit_code == 0
    assert result.stdout == "when\thold\tstate\tjob\titems\tguards\n"
    assert result.stderr == "no hold is waiting for a decision\n"
    shown = run_cli("holds", "list", env=TERMINAL)
    assert shown.stdout == "" and "no hold is waiting" in shown.stderr


def test_a_declined_prompt_exits_2_nothing_sent_with_or_without_json(isolated_env: Path) -> None:
    for name in ("old", "new"):
        added = run_cli("profile", "add", name, "--base-url", "https://o.test/v0", "--api-key", "k")
        assert added.exit_code == 0
    assert run_cli("profile", "use", "new").exit_code == 0
    for json_flag in ([], ["--json"]):
        _declined(json_flag)


def _declined(json_flag: list[str]) -> None:
    declined = run_cli(*json_flag, "profile", "remove", "old", input="n\n", env=TERMINAL)
    assert declined.exit_code == 2
    assert "Remove profile 'old'" in declined.stderr  # asked there
    assert "not confirmed; nothing was sent" in declined.stderr
    out = declined.stdout
    typed, out = out[: out.find("{") if "{" in out else len(out)], out[len(out.split("{")[0]) :]
    assert typed.strip() == "n"  # CliRunner echoes the answer to stdout (a terminal would not)
    if json_flag:  # stdout is the envelope alone: the question went to stderr
        document = json.loads(out)
        assert (document["exit_code"], document["error"]["code"]) == (2, 2)
        assert document["error"]["message"] == "not confirmed; nothing was sent"
    else:
        assert out == ""
    refused = run_cli(*json_flag, "profile", "remove", "old")  # no terminal, no --yes
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    listed = json.loads(run_cli("--json", "profile", "list").stdout)["profiles"]
    assert "old" in [p["name"] for p in listed]


def test_a_prompt_no_command_caught_ends_through_exit_code_for() -> None:
    """A Ctrl-D at a prompt outside a command's own handling used to end with click's exit 1
    ("items failed"); a Ctrl-C there is an interruption (130)."""
    from typer.exceptions import Abort

    from kprov.cli.help import _aborted

    assert _aborted(Abort(), json_mode=False) == 2
    interrupted = Abort()
    interrupted.__cause__ = KeyboardInterrupt()
    assert _aborted(interrupted, json_mode=False) == 130


def test_mapping_verify_scores_its_mismatches_through_exit_code_for(
    registered: list[Data], state_dir: Path
) -> None:
    with (state_dir / "mapping.csv").open("a") as handle:
        handle.write("s-2,00000000-0000-4000-8000-000000000000,t,,created\n")
    quiet = run_cli("-q", "mapping", "verify")
    assert quiet.exit_code == 1
    assert quiet.stdout.startswith("mismatch: s-2: mapped 00000000")
    assert "checked" not in quiet.stdout  # -q: the summary goes
    document = json.loads(run_cli("--json", "mapping", "verify").stdout)
    assert (document["ok"], document["exit_code"], document["command"]) == (
        False, 1, "mapping verify",
    )  # fmt: skip
    assert document["checked"] == 3 and len(document["mismatches"]) == 1
