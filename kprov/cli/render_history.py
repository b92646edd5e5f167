"""Showing the run ledger (`kprov history`): the values the history commands return for
the one renderer (``render.show_value``): the runs and one person's events as tables, one
run as its detail. A table on a terminal, tab-separated lines in a pipe, and with --json the
one envelope, never a second shape.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kprov.cli.render import PLAIN_CAP, TERMINAL_CAP
from kprov.cli.render_data import Column, Screen, Table
from kprov.cli.render_json import JSON_ITEMS_CAP
from kprov.errors import meaning

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


def counts_text(counts: Mapping[str, int], *, sum_kept: bool = True) -> str:
    """A run's counts in words; lines already as asked summed as "unchanged N" in a list of
    runs (*sum_kept*), each by its own name (as the run printed it) in one run's view."""
    summed = KEPT if sum_kept else ()
    changed = [f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items() if k not in summed]
    kept = sum(v for k, v in counts.items() if k in summed)
    if kept:
        changed.append(f"unchanged {kept:,}")
    return ", ".join(changed) or "nothing"


def who(run: Mapping[str, Any]) -> str:
    return f"{run.get('os_user') or '?'}@{run.get('host') or '?'}"


RUN_COLUMNS = (
    Column("when", wrap=False), Column("run", wrap=False), Column("who"),
    Column("command"), Column("counts"), Column("end", wrap=False),
)  # fmt: skip
EVENT_COLUMNS = (
    Column("when", wrap=False), Column("run", wrap=False), Column("who"),
    Column("event", wrap=False), Column("where"), Column("from"), Column("why"),
)  # fmt: skip


def run_list(runs: Sequence[Mapping[str, Any]]) -> Table:
    """The last runs: a table for people; the ledger's own rows under `runs` in JSON."""
    return Table("runs", RUN_COLUMNS, runs, display=_run_row,
                 empty="no runs recorded yet (the ledger begins with the next run)")  # fmt: skip


def _run_row(r: Mapping[str, Any]) -> dict[str, str]:
    return {"when": local_time(r["started_at"]), "run": r["run_id"], "who": who(r),
            "command": _command(r), "counts": counts_text(r["counts"]),
            "end": ending(r)}  # fmt: skip


def person_events(person: str, events: Sequence[Mapping[str, Any]]) -> Table:
    """One person's events across runs, under `events` in JSON beside `person`."""
    return Table("events", EVENT_COLUMNS, events, more={"person": person}, display=_event_row,
                 empty=f"no event for {person!r} in the runs the ledger keeps")  # fmt: skip


def _event_row(e: Mapping[str, Any]) -> dict[str, str]:
    return {"when": local_time(e["time"]), "run": e["run_id"], "who": who(e),
            "event": e["event"], "where": _where(e), "from": e["origin"],
            "why": e["detail"] or e["reason"]}  # fmt: skip


@dataclass(frozen=True)
class RunDetail:
    """One run: what, when, by whom, its inputs and its items (`kprov history RUN_ID`)."""

    run: dict[str, Any]
    inputs: Sequence[dict[str, Any]]
    items: Sequence[dict[str, Any]]
    total: int
    hold: Mapping[str, Any] | None = None
    failed: bool = field(default=False, init=False)

    def data(self) -> Mapping[str, Any]:
        shown = list(self.items[:JSON_ITEMS_CAP])
        return {"run": self.run, "inputs": list(self.inputs), "items": shown,
                "items_total": self.total, "items_truncated": self.total > len(shown),
                "hold": self.hold}  # fmt: skip

    def show(self, screen: Screen) -> None:
        for line in self._lines(TERMINAL_CAP * 5 if screen.terminal else PLAIN_CAP):
            screen.line(line)

    def _lines(self, cap: int) -> list[str]:
        run, items, total = self.run, self.items, self.total
        took = ""
        if run["ended_at"]:
            took = f", ended {local_time(run['ended_at'])} ({run['seconds'] or 0:,.1f} s)"
        lines = [
            f"run {run['run_id']}: {_command(run)}, started {local_time(run['started_at'])}"
            f"{took}, {ending(run)}",
            f"by {run['os_user']} on {run['host']} (pid {run['pid']}), kprov "
            f"{run['kprov_version']}, profile {run['profile']}, {run['base_url']}",
            "command: kprov " + " ".join(run["argv"]),
        ]
        if run.get("parent"):
            lines.append(f"applies the plan of run {run['parent']}")
        if run["error"]:
            lines.append(f"stopped by: {run['error'].get('message', '')}")
        lines.append(f"counts: {counts_text(run['counts'], sum_kept=False)}")
        if self.hold is not None:
            hold = self.hold
            why = "; ".join(f"{t['guard']}: {t['why']}" for t in hold["trips"])
            lines.append(
                f"hold {hold['hold_id']} ({hold['state']}, {hold['items']:,} items): {why}"
            )
        for entry in self.inputs:
            size = f"{entry['size']:,} bytes" if entry["size"] is not None else "-"
            digest = f"sha256:{entry['sha256']}" if entry["sha256"] else ""
            lines.append(f"input: {entry['kind']}  {entry['path']}  {size}  {digest}".rstrip())
        lines.extend(item_line(item) for item in items[:cap])
        if total > min(cap, len(items)):
            lines.append(f"... and {total - min(cap, len(items)):,} more (--json lists up to "
                         f"{JSON_ITEMS_CAP:,}; `kprov history export` all)")  # fmt: skip
        return lines


def item_line(item: Mapping[str, Any]) -> str:
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
