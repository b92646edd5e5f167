"""One way to show a plan, a run or an error: a Rich table on a terminal, plain lines when
piped or under cron, one JSON envelope with --json.

Every JSON document kprov prints has the same envelope (``render_json``): ``ok``,
``command``, ``exit_code`` and ``error`` (null, or ``{code, type, message, hint, ...}``); plans
and runs add ``run_id``, ``mode``, ``counts`` and ``items``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kprov.cli.environment import Environment
from kprov.cli.render_json import emit_json, envelope, guards_json, plan_document, run_document
from kprov.errors import ExitCode, KprovError
from kprov.outside_text import printable

if TYPE_CHECKING:
    from pathlib import Path

    from kprov.cli.render_data import Shown
    from kprov.provision.plan import Item, Plan
    from kprov.provision.result import Outcome, RunResult

TERMINAL_CAP = 20  # people listed per kind on a terminal
PLAIN_CAP = 1000  # ... and when piped (removals are always listed in full)


@dataclass(frozen=True)
class View:
    """How to show things: decided once per command from options and the environment."""

    json: bool = False
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    env: Environment = field(default_factory=Environment)
    cron_quiet: bool = False  # print nothing when all is well and nobody is watching

    @property
    def terminal(self) -> bool:
        """stdout is a terminal: tables and capped lists for a person."""
        return self.env.stdout_isatty

    @property
    def remarks(self) -> bool:
        """Progress and remarks on stderr are wanted: not --quiet, and not --json (whose
        reader is a program)."""
        return not (self.quiet or self.json)


def show_error(error: KprovError, view: View, command: str) -> None:
    """What happened, then what to do: on stderr (and the envelope on stdout with --json)."""
    if view.json:
        emit_json(envelope(command, error.exit_code, error))
    # "\n" only: splitlines() also breaks at \x1c-\x1e, \x85 and U+2028, which outside text
    # could use to start a line of its own ("kprov: error: ..." forged); they are escaped.
    lines = str(error).rstrip("\n").split("\n") if str(error) else [type(error).__name__]
    _err(f"kprov: error: {lines[0]}")
    for line in lines[1:]:
        _err(line)
    sys.stderr.flush()


# ----------------------------------------------------------------- human views


def _line(item: Item, word: str) -> str:
    who = f"{item.role} {item.external_id}".strip() if item.external_id else ""
    where = f" ({item.where})" if item.origin else ""
    if item.action.value == "create_instance":
        spec = item.spec
        name = f" named {spec.name!r}" if spec is not None else ""
        return f"{word}: instance {item.instance}{name}"
    # An item with no person is its class's own (the blocked instance of a class that
    # cannot work): name the class, not an empty person ("cannot:  in bio").
    target = f" in {item.instance}" if who else f"instance {item.instance}"
    reason = item.reason.removeprefix("withheld: ") if item.guard else item.reason
    why = f": {reason}" if reason else ""
    return f"{word}: {who}{target}{where}{why}"


def show_plan(
    plan: Plan, view: View, *, run_id: str, code: ExitCode, saved_to: Path | None = None
) -> None:
    """A plan: its counts, its items by fate, the guards that would hold, its warnings, and
    (*saved_to*, --out) the command that applies it."""
    if view.json:
        emit_json(plan_document(plan, run_id, code))
        return
    if view.quiet:
        return
    from kprov.provision.plan import plan_fate

    out = _console(view)
    counts = plan.counts()
    _counts_table(out, view, f"plan: {plan.command}", counts)
    groups: dict[str, list[Item]] = {}
    for item in plan.items:
        groups.setdefault(plan_fate(item, plan), []).append(item)
    for word, items in groups.items():
        removal = all(i.action.value in ("unregister", "wait") for i in items)
        cap = TERMINAL_CAP if view.terminal else (len(items) if removal else PLAIN_CAP)
        for item in items[:cap]:
            _print(out, view, _line(item, word), bad=word == "cannot")
        if len(items) > cap:
            _print(out, view, f"... and {len(items) - cap} more {word} (--report FILE lists all)")
    withheld = [i for i in plan.items if i.guard]
    for trip in guards_json(plan, withheld):
        text = (
            f"guard {trip['guard']}: {trip['why']}: {trip['items']:,} item(s) would be "
            "withheld in a hold (a run would exit 6; the rest is applied)"
        )
        _print(out, view, text, bad=True)
    if not plan.has_changes and not withheld:
        _print(out, view, "nothing to do")
    _show_skipped(out, view, plan)
    for warning in plan.warnings:
        _err(f"kprov: warning: {warning}")
    if saved_to is not None:
        import shlex

        again = f"kprov --profile {shlex.quote(plan.profile)} apply {shlex.quote(str(saved_to))}"
        _err(f"kprov: plan saved to {saved_to}; apply it with `{again}`")


SKIPPED_HINT = "(--report FILE lists them; -v shows them)"


def _show_skipped(out: Any, view: View, plan: Plan) -> None:
    """The rows the readers left out (a guardian, a disabled user, ...): with -v each with
    where and why; otherwise one line saying how to see them."""
    skipped = plan.skipped
    if not skipped:
        return
    if not view.verbose:
        _print(out, view, f"{len(skipped):,} row(s) skipped {SKIPPED_HINT}")
        return
    cap = TERMINAL_CAP if view.terminal else len(skipped)
    for row in skipped[:cap]:
        _print(out, view, f"skipped: {row.external_id or 'a row'} ({row.origin}): {row.reason}")
    if len(skipped) > cap:
        _print(out, view, f"... and {len(skipped) - cap:,} more skipped (--report FILE lists all)")


def _cron_silent(view: View, clean: bool) -> bool:
    """Nothing printed for a clean run nobody watches (cron mails any output); a terminal
    always gets its summary."""
    return view.cron_quiet and clean and not view.verbose and not view.terminal


def show_run(result: RunResult, view: View, *, code: ExitCode) -> None:
    """A run's end: its summary (none for a clean run under cron), then on stderr its
    warnings, what failed, what a guard withheld, and what stopped it."""
    if view.json:
        emit_json(run_document(result, code))
    for warning in result.warnings:
        _err(f"kprov: warning: {warning}")
    if view.json:
        sys.stderr.flush()
        return
    clean = code == ExitCode.OK and not result.warnings
    if not view.quiet and not _cron_silent(view, clean):
        _run_summary(result, view)
    failures = result.failures()
    if result.stopped_by is not None:  # what was never attempted is summed up, not listed
        failures = _sum_up_untried(failures, result.stopped_by)
    _list_failures(failures, view)
    if result.withheld:
        _show_hold(result)
    if result.stopped_by is not None:
        _show_stop(result.stopped_by, view, result.plan.command)
    sys.stderr.flush()


def _run_summary(result: RunResult, view: View) -> None:
    counts = result.counts()
    title = f"{result.plan.command} {result.run_id}"
    out = _console(view) if view.terminal else None
    if out is not None:
        _counts_table(out, view, title, counts)
    else:
        summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
        _out(f"{title}: {summary or 'nothing to do'} ({result.elapsed:.1f} s)")
    _show_skipped(out, view, result.plan)


def _sum_up_untried(failures: list[Outcome], stopped_by: KprovError) -> list[Outcome]:
    """One line for the items a stopped run never attempted; the others, to be listed."""
    untried = [o for o in failures if o.status.value == "not_attempted"]
    if untried:
        resumes = stopped_by.exit_code in (ExitCode.API, ExitCode.INTERRUPTED)
        then = "the rerun does them" if resumes else "fix what is named below, then rerun"
        _err(f"kprov: {len(untried)} item(s) not attempted; {then}")
    return [o for o in failures if o.status.value != "not_attempted"]


def _list_failures(failures: list[Outcome], view: View) -> None:
    from kprov.provision.result import run_fate

    cap = 50 if view.terminal else 200
    for outcome in failures[:cap]:
        item = outcome.item
        where = f"{item.where}: " if item.origin else ""
        who = item.external_id or f"instance {item.instance}"
        target = f" in {item.instance}" if item.external_id and item.instance else ""
        _err(f"{run_fate(outcome)}: {where}{who}{target}: {outcome.detail or item.reason}")
    if len(failures) > cap:
        _err(f"... and {len(failures) - cap} more (--report FILE lists all)")


def _show_stop(error: KprovError, view: View, command: str) -> None:
    show_error(error, view, command)
    if error.exit_code in (ExitCode.API, ExitCode.INTERRUPTED):
        _err("kprov: every answer received was recorded; rerun the same command to resume.")


def _show_hold(result: RunResult) -> None:
    """What the guards withheld, why, and the commands that decide it (on stderr: cron mails
    it, and stdout stays the summary)."""
    from kprov.provision.holds import withheld_items

    withheld = withheld_items(result)
    _err(f"kprov: {len(withheld):,} item(s) withheld by a guard; the rest was applied:")
    for trip in guards_json(result.plan, withheld):
        _err(f"  {trip['guard']}: {trip['why']}")
    hold = result.hold_id
    if hold:
        _err(
            f"kprov: they wait in hold {hold}: `kprov holds show {hold}` shows them, `kprov "
            f"holds approve {hold}` applies exactly them, `kprov holds dismiss {hold}` drops "
            "them (a later run of this job judges its export again and supersedes the hold)."
        )
    else:
        _err(
            "kprov: the hold could not be saved (see the warning about the run ledger): "
            "nothing it withheld was sent; the next run judges them again."
        )


def _out(line: str) -> None:
    """A line of kprov's output on stdout; outside text in it (ids, names, server messages)
    cannot put a control, bidi or invisible character on the terminal."""
    sys.stdout.write(printable(line) + "\n")


def _err(line: str) -> None:
    """The same, on stderr."""
    sys.stderr.write(printable(line) + "\n")


def _console(view: View) -> Any:
    if not view.terminal:
        return None
    return view.env.console(no_color=view.no_color)


def _print(out: Any, view: View, text: str, *, bad: bool = False) -> None:
    if out is None:
        _out(text)
    else:
        out.print(printable(text), style="red" if bad else None, markup=False, highlight=False)


def _counts_table(out: Any, view: View, title: str, counts: Mapping[str, int]) -> None:
    from kprov.provision.result import FAILING

    if out is None:
        summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())
        sys.stdout.write(f"{title}: {summary or 'nothing'}\n")
        return
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for name, count in counts.items():
        style = "red" if name in FAILING or name == "cannot" else None
        table.add_row(name.replace("_", " "), f"{count:,}", style=style)
    out.print(table)


def show_value(value: Shown, view: View, command: str) -> ExitCode:
    """A data command's value (``render_data``): the envelope with --json, else its view for
    people; the exit code is ``exit_code_for``'s, and the envelope says the same one."""
    from kprov.cli.output import exit_code_for
    from kprov.cli.render_data import Screen

    code = exit_code_for(shown=value)
    if view.json:
        emit_json(envelope(command, code, **value.data()))
    else:
        value.show(Screen(view))
    sys.stdout.flush()
    return code
