"""One way to show a plan, a run or an error: a Rich table on a terminal, plain lines when
piped or under cron, one JSON envelope with --json.

Every JSON document kprov prints has the same envelope: ``ok``, ``command``, ``exit_code``
and ``error`` (null, or ``{code, type, message, hint, ...}``); plans and runs add
``run_id``, ``mode``, ``counts`` and ``items``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TextIO

from kprov.cli.environment import Environment
from kprov.errors import ExitCode, KprovError
from kprov.outside_text import printable, printable_data

if TYPE_CHECKING:
    from pathlib import Path

    from kprov.cli.render_data import Shown
    from kprov.provision.plan import Item, Plan
    from kprov.provision.result import Outcome, RunResult

JSON_ITEMS_CAP = 10_000  # --json lists at most this many items; reports list every one
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


def emit_json(data: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """The JSON document on stdout: ASCII only (JSON escapes), and outside text in it escaped
    like everywhere else, so `jq -r .name` cannot put a control character on a terminal."""
    stream = stream or sys.stdout
    stream.write(_indented(printable_data(data)) + "\n")
    stream.flush()


def _encoder() -> Callable[[Any], str]:
    """One-line JSON (ASCII, ``default=str``) by the C encoder, made once: ``json.dumps``
    makes a new one at each call, which costs more than encoding a report row."""
    from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]

    if c_make_encoder is None:
        return json.JSONEncoder(default=str).encode
    encode = c_make_encoder(
        None, str, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_one_line = _encoder()


def _indented(value: Any, level: int = 0) -> str:
    """JSON indented by two spaces, each element of a list on one line of its own.

    ``json.dumps(indent=...)`` runs the pure-Python encoder: for a 10,000-item run it took
    more CPU than a thousand requests. Objects are indented here, and list elements (an item,
    a failure, a warning) are written by the C encoder, one per line."""
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(value, dict) and value:
        fields = (f"{pad}{_one_line(str(k))}: {_indented(v, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(fields) + "\n" + end + "}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(pad + _one_line(v) for v in value) + "\n" + end + "]"
    return _one_line(value)


def error_json(error: KprovError) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": int(error.exit_code),
        "type": type(error).__name__,
        "message": error.message,
    }
    if error.hint:
        data["hint"] = error.hint
    for attribute in ("status", "error_id", "problems"):
        value = getattr(error, attribute, None)
        if value:
            data[attribute] = value
    return data


def envelope(command: str, code: ExitCode, error: KprovError | None = None, **data: Any) -> dict:
    from kprov import __version__

    return {
        "ok": code in (ExitCode.OK, ExitCode.CHANGES_PENDING),
        "command": command,
        "exit_code": int(code),
        "kprov": __version__,
        **data,
        "error": error_json(error) if error is not None else None,
    }


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


def _items_json(rows: Iterator[dict[str, Any]], total: int) -> dict[str, Any]:
    """The first JSON_ITEMS_CAP of *total* rows (the rest are never built)."""
    return {
        "items": list(islice(rows, JSON_ITEMS_CAP)),
        "items_total": total,
        "items_truncated": total > JSON_ITEMS_CAP,
    }


def _brake_json(plan: Plan) -> dict[str, Any] | None:
    brake = plan.brake
    if brake is None:
        return None
    return {**brake.__dict__, "engaged": brake.engaged}


def _guards_json(plan: Plan, withheld: list[Item]) -> list[dict[str, Any]]:
    """The guards that tripped, each with why and how many items it withheld."""
    from kprov.provision.guards_json import trip_json
    from kprov.provision.holds import trips_of

    return [trip_json(t) for t in trips_of(plan, withheld)] if withheld else []


def plan_document(plan: Plan, run_id: str, code: ExitCode) -> dict[str, Any]:
    from kprov.provision.report import report_rows

    rows = report_rows(plan, every_line=False)  # one per plan item
    withheld = [i for i in plan.items if i.guard]
    return envelope(
        plan.command, code, mode="plan", run_id=run_id, counts=plan.counts(),
        changes=plan.has_changes, brake=_brake_json(plan),
        guards=_guards_json(plan, withheld), warnings=list(plan.warnings),
        **_items_json(rows, len(plan.items)),
    )  # fmt: skip


def run_document(result: RunResult, code: ExitCode, *, items: bool = True) -> dict[str, Any]:
    from kprov.provision.holds import withheld_items
    from kprov.provision.report import report_rows

    rows = report_rows(result, every_line=False)  # one per outcome
    withheld = withheld_items(result)
    return envelope(
        result.plan.command, code, result.stopped_by, mode="apply", run_id=result.run_id,
        counts=result.counts(), brake=_brake_json(result.plan),
        guards=_guards_json(result.plan, withheld), hold_id=result.hold_id or None,
        approve=f"kprov holds approve {result.hold_id}" if result.hold_id else None,
        warnings=result.warnings, requests=result.requests, rate_limited=result.rate_limited,
        seconds=round(result.elapsed, 3),
        **(_items_json(rows, len(result.outcomes)) if items else {}),
    )  # fmt: skip


# ----------------------------------------------------------------- human views


def _line(item: Item, word: str) -> str:
    who = f"{item.role} {item.external_id}".strip() if item.external_id else ""
    where = f" ({item.where})" if item.origin else ""
    if item.action.value == "create_instance":
        spec = item.spec
        name = f" named {spec.name!r}" if spec is not None else ""
        return f"{word}: instance {item.instance}{name}"
    target = f" in {item.instance}" if item.instance else ""
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
    for trip in _guards_json(plan, withheld):
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
    for trip in _guards_json(result.plan, withheld):
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
