"""A run builds only the tree of the sub-command it names (kprov.cli.main.run): the same
command, help and options as in the whole tree, which `kprov --help`, completion and anything
the global options alone cannot place still get."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kprov.cli.main import COMMANDS, app, build_app, command_word


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["accounts", "import", "roster.csv"], "accounts"),
        (["--profile", "accounts", "sync", "x.yaml"], "sync"),  # a value is not a command
        (["-p", "prod", "--json", "-q", "-v", "--no-color", "--debug", "holds"], "holds"),
        (["--config=c.yaml", "--profile=p", "register"], "register"),
        (["sync", "x.yaml", "--profile", "prod"], "sync"),  # options may follow the command
        (["--help"], None),
        (["--version"], None),
        ([], None),
        (["nosuch"], None),  # click names the error and suggests from the whole tree
        (["--unknown", "sync"], None),
        (["-pprod", "sync"], None),  # a form the scan does not read: the whole tree decides
    ],
)
def test_the_command_word_is_read_past_the_global_options_only(
    words: list[str], expected: str | None
) -> None:
    assert command_word(words) == expected


def test_shell_completion_gets_the_whole_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_KPROV_COMPLETE", "complete_bash")
    assert command_word(["sync"]) is None


def test_each_commands_own_tree_says_what_the_whole_tree_says() -> None:
    runner = CliRunner()
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(str(n) for n in names) == sorted(COMMANDS)  # every command is in the table
    for word in COMMANDS:
        whole = runner.invoke(app, [word, "--help"], terminal_width=100)
        alone = runner.invoke(build_app(word), [word, "--help"], terminal_width=100)
        assert (alone.exit_code, alone.output) == (whole.exit_code, whole.output), (
            word,
            alone.output,
        )


def test_the_suites_tree_cache_never_hands_one_apps_tree_to_another() -> None:
    """tests/helpers.py caches each app's click tree. Keyed by id(), a freed app's id went to
    the next `build_app(word)` and CI ran `history --help` on `sync`'s tree (No such command)."""
    from tests.helpers import _command_of

    for _ in range(20):
        for word in ("sync", "apply", "register", "unregister", "history"):
            assert list(_command_of(build_app(word)).commands) == [word]
