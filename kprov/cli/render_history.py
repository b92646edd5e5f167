"""Showing the run ledger (`kprov history`): the renderer's views for runs, one run, and one
person's events. A table on a terminal, plain tab-separated lines in a pipe, and with --json
the one envelope of ``cli.render`` (``envelope``), never a second shape.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kprov.cli.render import JSON_ITEMS_CAP, PLAIN_CAP, TERMINAL_CAP, View, emit_json, envelope
from kprov.errors import ExitCode, meaning

KEPT = ("already_mapped", "already_registered")


def local_time(iso: str | None) -> str:
    """An ISO 8601 UTC time as the machine's local time, to the minute (for people)."""
    if not iso:
        return "-"
    stamp = time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
    import calendar

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(calendar.timegm(stamp)))


def ending(run: Mapping[str, Any]) -> str:
    """How a run ended, in words: "exit 0", "exit 4 (the API ...)", "unfinished", "running"."""
    if run.get("running"):
        return "running"
    if run["unfinished"]:
        return "unfinished (no end recorded: killed, or the machine stopped)"
    code = run["exit_code"]
    return "exit 0" if code == 0 else f"exit {code} ({meaning(int(code))})"


def counts_text(counts: Mapping[str, int]) -> str:
    changed = [f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items() if k not in KEPT]
    kept = sum(v for k, v in counts.items() if k in KEPT)
    if kept:
        changed.append(f"unchanged {kept:,}")
    return ", ".join(changed) or "nothing"


def who(run: Mapping[str, Any]) -> str:
    return f"{run.get('os_user') or '?'}@{run.get('host') or '?'}"


def show_runs(runs: Sequence[dict[str, Any]], view: View) -> None:
    if view.json:
        emit_json(envelope("history", ExitCode.OK, runs=list(runs)))
        return
    if not runs:
        sys.stdout.write("no runs recorded yet (the ledger begins with the next run)\n")
        return
    rows = [
        (local_time(r["started_at"]), r["run_id"], who(r), _command(r), counts_text(r["counts"]),
         ending(r))
        for r in runs
    ]  # fmt: skip
    _table(view, ("when", "run", "who", "command", "counts", "end"), rows)


def show_run(
    run: dict[str, Any],
    inputs: Sequence[dict[str, Any]],
    items: Sequence[dict[str, Any]],
    total: int,
    view: View,
    *,
    hold: Mapping[str, Any] | None = None,
) -> None:
    if view.json:
        shown = list(items[:JSON_ITEMS_CAP])
        emit_json(
            envelope(
                "history", ExitCode.OK, run=run, inputs=list(inputs), items=shown,
                items_total=total, items_truncated=total > len(shown), hold=hold,
            )
        )  # fmt: skip
        return
    lines = []
    took = ""
    if run["ended_at"]:
        took = f", ended {local_time(run['ended_at'])} ({run['seconds'] or 0:,.1f} s)"
    lines.append(f"run {run['run_id']}: {_command(run)}, started "
                 f"{local_time(run['started_at'])}{took}, {ending(run)}")  # fmt: skip
    lines.append(
        f"by {run['os_user']} on {run['host']} (pid {run['pid']}), kprov "
        f"{run['kprov_version']}, profile {run['profile']}, {run['base_url']}"
    )
    lines.append("command: kprov " + " ".join(run["argv"]))
    if run.get("parent"):
        lines.append(f"applies the plan of run {run['parent']}")
    if run["error"]:
        lines.append(f"stopped by: {run['error'].get('message', '')}")
    lines.append(f"counts: {counts_text(run['counts'])}")
    if hold is not None:
        why = "; ".join(f"{t['guard']}: {t['why']}" for t in hold["trips"])
        lines.append(f"hold {hold['hold_id']} ({hold['state']}, {hold['items']:,} items): {why}")
    for entry in inputs:
        size = f"{entry['size']:,} bytes" if entry["size"] is not None else "-"
        digest = f"sha256:{entry['sha256']}" if entry["sha256"] else ""
        lines.append(f"input: {entry['kind']}  {entry['path']}  {size}  {digest}".rstrip())
    cap = TERMINAL_CAP * 5 if view.terminal else PLAIN_CAP
    lines.extend(_item_line(item) for item in items[:cap])
    if total > min(cap, len(items)):
        lines.append(f"... and {total - min(cap, len(items)):,} more (--json lists up to "
                     f"{JSON_ITEMS_CAP:,}; `kprov history export` all)")  # fmt: skip
    sys.stdout.write("".join(_plain(line) + "\n" for line in lines))


def show_person(person: str, events: Sequence[dict[str, Any]], view: View) -> None:
    if view.json:
        emit_json(envelope("history", ExitCode.OK, person=person, events=list(events)))
        return
    if not events:
        sys.stdout.write(f"no event for {person!r} in the runs the ledger keeps\n")
        return
    rows = [
        (local_time(e["time"]), e["run_id"], who(e), e["event"], _where(e), e["origin"],
         e["detail"] or e["reason"])
        for e in events
    ]  # fmt: skip
    _table(view, ("when", "run", "who", "event", "where", "from", "why"), rows)


def _item_line(item: Mapping[str, Any]) -> str:
    outcome = item["outcome"] or "no outcome recorded"
    person = f"{item['role']} {item['person']}".strip()
    what = person or f"instance {item['instance']}"
    target = f" in {_where(item)}" if person and item["instance"] else ""
    origin = f" ({item['file']}:{item['line']})" if item["file"] else ""
    why = item["detail"] or item["reason"]
    if outcome == "withheld":  # said once
        why = why.removeprefix("withheld: ")
    return f"{outcome}: {what}{target}{origin}{': ' + why if why else ''}"


def _where(row: Mapping[str, Any]) -> str:
    name = row.get("instance_name") or ""
    key = row.get("instance") or ""
    return f"{key} ({name})" if name and name != key else key


def _command(run: Mapping[str, Any]) -> str:
    return run["command"] + (" --plan" if run["mode"] == "plan" else "")


def _table(view: View, head: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table on a terminal; tab-separated lines (no header) in a pipe."""
    if not view.terminal:
        for row in rows:
            sys.stdout.write("\t".join(_plain(c) for c in row) + "\n")
        return
    from rich.table import Table
    from rich.text import Text

    from kprov.cli.output import make_console

    table = Table(show_header=True)
    for name in head:
        keep = name in ("when", "run", "event", "end")  # short: never folded
        table.add_column(name, overflow="fold", no_wrap=keep)
    for row in rows:
        table.add_row(*(Text(_plain(c)) for c in row))  # Text: no markup read from outside
    make_console(no_color=view.no_color).print(table)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _plain(text: str) -> str:
    """One cell, printable: ids and reasons come from rosters and servers, so control and
    direction characters (an escape sequence, a tab that would shift the columns) are
    shown as escapes, never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
