"""The shape every command shares: one environment for terminal facts, one renderer for
data, one declaration of the run options, NAME-style metavars, and completion that reads
local files only."""

from __future__ import annotations

import functools
import io
import re
import socket
from pathlib import Path
from typing import Any, cast

import pytest
import typer

from kprov.cli.environment import Environment
from kprov.cli.render import View
from kprov.cli.render_data import Column, Fields, Message, Screen, Table

PROVISIONING = (
    ("sync",), ("apply",), ("register",), ("unregister",), ("accounts", "import"),
    ("holds", "approve"),
)  # fmt: skip


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_environment_reads_the_streams_and_no_color_once() -> None:
    streams = (Stream(True), Stream(False), Stream(True))
    env = Environment.detect(streams, environ={"NO_COLOR": ""})  # set, even empty: no colour
    assert (env.stdin_isatty, env.stdout_isatty, env.stderr_isatty) == (True, False, True)
    assert not env.colour() and env.no_color
    plain = Environment.detect((Stream(False),) * 3, environ={})
    assert plain.colour() and not plain.colour(no_color_option=True)
    assert Environment.detect((None, object(), Stream(True)), environ={}).stderr_isatty


def test_the_views_believe_the_injected_environment_not_the_streams() -> None:
    on_a_terminal = View(env=Environment(stdout_isatty=True, width=57))
    assert on_a_terminal.terminal and not View().terminal
    console = on_a_terminal.env.console()
    assert console.is_terminal and console.width == 57
    assert not Environment().console().is_terminal  # a pipe, whatever Rich would guess
    assert View(json=True).remarks is False and View(quiet=True).remarks is False


def test_the_command_gets_the_environment_a_test_hands_it() -> None:
    from typer.testing import CliRunner

    from kprov.cli.main import app

    seen: list[Environment] = []
    probe = typer.Typer()

    @probe.callback(invoke_without_command=True)
    def _probe(ctx: typer.Context) -> None:
        seen.append(ctx.find_root().obj.env)

    app.add_typer(probe, name="probe-env")
    try:
        env = Environment(stdin_isatty=True, width=33)
        assert CliRunner().invoke(app, ["probe-env"], obj=env).exit_code == 0
        assert seen == [env]
    finally:
        app.registered_groups.pop()


def test_a_table_is_tsv_with_a_header_in_a_pipe_and_aligned_on_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows: list[dict[str, Any]] = [
        {"key": "alg\t1", "n": 3, "name": "Algebra\x1b[31m"},
        {"key": "b", "n": None},
    ]
    table = Table("things", (Column("key"), Column("n", right=True), Column("name")), rows)
    table.show(Screen(View()))
    out = capsys.readouterr().out
    assert out == "key\tn\tname\nalg\\x091\t3\tAlgebra\\x1b[31m\nb\t-\t-\n"  # never a raw tab/ESC
    table.show(Screen(View(env=Environment(stdout_isatty=True, no_color=True, width=80))))
    shown = [
        re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip()
        for line in capsys.readouterr().out.splitlines()
    ]
    assert shown[0].split() == ["KEY", "N", "NAME"]
    assert shown[1].index("3") == shown[0].index("N")  # numbers on the right of their column
    assert "\\x1b[31m" in shown[1]  # the name's escape sequence shown, not obeyed
    assert table.data() == {"things": rows}


def test_a_narrow_terminal_never_cuts_an_id_or_drops_a_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A new user's finding: at 80 columns, `registrations list` cut two characters off each
    UUID and `history` dropped three columns: a cut id is a wrong id to paste."""
    uuid = "12e7e196-7b51-40ca-a38d-79d56fe388e4"
    rows = [{"type": "instructor", "account": uuid, "registration": uuid, "why": "x " * 30}]
    columns = (Column("type", wrap=False), Column("account", wrap=False),
               Column("registration", wrap=False), Column("why"))  # fmt: skip
    Table("r", columns, rows).show(Screen(View(env=Environment(stdout_isatty=True, width=40))))
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert out.count(uuid) == 2 and "instructor" in out
    assert all(word in out for word in ("TYPE", "ACCOUNT", "REGISTRATION", "WHY"))


def test_fields_and_messages_for_people_and_for_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    fields = Fields({"id": "x", "start_date": None}, title="instance", hidden=("id",))
    fields.show(Screen(View()))
    assert capsys.readouterr().out == "instance\n  start_date: -\n"
    Fields({"a": 1, "long_key": 2}).show(Screen(View(env=Environment(stdout_isatty=True))))
    assert capsys.readouterr().out == "a:        1\nlong_key: 2\n"
    message = Message(["checked 3"], {"checked": 3}, always=["mismatch: s-2"], failed=True)
    message.show(Screen(View(quiet=True)))
    assert capsys.readouterr().out == "mismatch: s-2\n"  # --quiet: what went wrong only
    assert message.data() == {"checked": 3}


def test_exit_code_for_scores_a_data_value() -> None:
    from kprov.cli.output import exit_code_for
    from kprov.errors import ExitCode, InputError

    assert exit_code_for(shown=Message([], failed=True)) == ExitCode.ITEM_FAILURES
    assert exit_code_for(shown=Fields({})) == ExitCode.OK
    assert exit_code_for(error=InputError("x"), shown=Fields({})) == ExitCode.INPUT


@functools.cache
def _root() -> Any:
    from kprov.cli.main import app

    return typer.main.get_command(app)


def _command(*path: str) -> Any:
    command = _root()
    for word in path:
        command = command.commands[word]
    return command


def test_every_provisioning_command_takes_every_shared_run_option() -> None:
    from kprov.cli.run_options import RUN, SHARED

    every = {s.option.param_decls[0] for s in SHARED if s.group == RUN}
    assert {"--concurrency", "--report", "--log-file", "--notify", "--metrics-file"} <= every
    for path in PROVISIONING:
        flags = {opt for p in _command(*path).params for opt in p.opts}
        assert every <= flags, (path, every - flags)


def test_a_new_shared_option_is_declared_in_one_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a contributor does (docs/development.md): one `Shared` line, and the decorator
    gives it to every provisioning command, after the command's own options."""
    import inspect

    from kprov.cli import run_options

    extra = run_options.Shared("yes", bool, typer.Option(False, "--brand-new"))
    monkeypatch.setattr(run_options, "SHARED", (*run_options.SHARED, extra))

    @run_options.run_options()
    def command(ctx: typer.Context, own: str = typer.Option("", "--own"), *, options: Any) -> Any:
        return options

    names = list(inspect.signature(command).parameters)
    assert names[:2] == ["ctx", "own"] and names[-1] == "yes" and "options" not in names
    shared = list(inspect.signature(command).parameters.values())[2:]
    built = command(
        cast(typer.Context, None), own="", **{p.name: p.default.default for p in shared}
    )
    assert built.yes is False and built.concurrency == 4


def _walk(command: Any, path: tuple[str, ...] = ()) -> Any:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def test_every_value_has_a_name_style_metavar_and_usage_lines_show_no_braces() -> None:
    root = _root()
    pattern = re.compile(r"^\[?[A-Z][A-Z0-9_|%.]*(\|[a-z]+)?\]?$")
    for path, command in _walk(root):
        for param in command.params:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                continue
            assert param.metavar and pattern.match(param.metavar), (path, param.opts)
        ctx = typer.Context(command, info_name="kprov")
        usage = " ".join(command.collect_usage_pieces(ctx))
        assert "{" not in usage and "<" not in usage, (path, usage)
    reference = (Path(__file__).parents[2] / "docs" / "reference.md").read_text()
    assert not re.search(r"<(str|path|int|float)[^>]*>|Usage: kprov .*\{", reference)


def test_profile_names_complete_from_the_config_file_only(isolated_env: Path) -> None:
    from kprov.cli.completion import complete_profile
    from kprov.config import ConfigFile, Profile

    config = ConfigFile(isolated_env / "config.yaml")
    for name in ("prod", "prod-eu", "staging"):
        config.add(Profile(name, "https://api.example.test/v0", "k"))
    config.save()
    ctx = typer.Context(_command("profile", "use"))
    assert complete_profile(ctx, "pro") == ["prod", "prod-eu"]
    assert complete_profile(ctx, "") == ["prod", "prod-eu", "sandbox", "staging"]
    (isolated_env / "config.yaml").write_text("profiles: [not, a, mapping")  # broken
    assert complete_profile(ctx, "") == []  # a completion never fails


def test_instance_keys_complete_from_local_state_without_lock_or_network(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kprov.cli.completion import complete_instance_key
    from kprov.state.lock import StateLock
    from kprov.state.registry import InstanceRecord, Registry

    state_dir = isolated_env / "state"
    state_dir.mkdir()
    registry = Registry.open(state_dir)
    for n, key in enumerate(("alg1-p3", "alg2-p1", "bio\x1b[2J")):
        uuid = f"00000000-0000-4000-8000-00000000000{n}"
        registry.record_instance(InstanceRecord(key, uuid, "gref-x", f"Class {n}"))
    registry.close()

    def no_network(*args: Any) -> None:
        raise AssertionError("completion opened a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    ctx = typer.Context(_command("instances", "get"))
    with StateLock(state_dir, command="kprov sync"):  # a run holds the lock meanwhile
        assert complete_instance_key(ctx, "alg") == ["alg1-p3", "alg2-p1"]
    assert complete_instance_key(ctx, "") == ["alg1-p3", "alg2-p1"]  # no control character
    monkeypatch.setenv("KPROV_STATE_DIR", str(isolated_env / "nowhere"))
    assert complete_instance_key(ctx, "") == []


def test_a_refused_question_says_what_was_not_confirmed() -> None:
    """Without a terminal (cron, a pipe) the refusal names what it would have done, and no
    outside text in the question can steer the terminal."""
    from kprov.cli.output import confirm
    from kprov.errors import InputError

    question = "2 registration(s) would be removed from \x1b]0;x\x07alg:\n  learner s-1\nRemove?"
    with pytest.raises(InputError) as refused:
        confirm(question, Environment(), yes=False)
    assert refused.value.message.startswith(
        "refusing without confirmation: 2 registration(s) would be removed from "
    )
    assert "\x1b" not in refused.value.message and "learner s-1" not in refused.value.message
    assert refused.value.exit_code == 2 and refused.value.hint
    confirm(question, Environment(), yes=True)  # --yes: nothing asked, nothing refused
