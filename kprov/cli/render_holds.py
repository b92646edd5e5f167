"""Showing holds (`kprov holds list`, `kprov holds show`): plain lines in a pipe, a table on a
terminal, and the one JSON envelope (``cli.output.emit_data``) with --json."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kprov.cli.render import JSON_ITEMS_CAP, PLAIN_CAP, TERMINAL_CAP, View
from kprov.cli.render_history import _item_line, _plain, _table, counts_text, local_time

if TYPE_CHECKING:
    from kprov.state.ledger import Ledger

HIDDEN = ("run_key",)


def hold_detail(ledger: Ledger | None, ref: str) -> dict[str, Any]:
    """Everything `holds show` says of one hold, as data: the hold, its items, the sources
    it held beside the exports they were judged against, and the run before it."""
    from kprov.provision.guards_sources import describe
    from kprov.provision.holds import source_fingerprint
    from kprov.state import ledger_guards as holds
    from kprov.state import ledger_queries as queries

    hold = holds.find_hold(ledger, ref)
    assert ledger is not None
    rows = holds.held_rows(ledger, hold)
    tonight = {f.source: f for f in map(source_fingerprint, holds.hold_fingerprints(ledger, hold))}
    sources = []
    for trip in hold["trips"]:
        now = tonight.get(trip.get("source") or "")
        if now is None:
            continue
        raw = holds.reference_before(ledger, now.source, int(hold["run_key"]))
        before = source_fingerprint(raw) if raw is not None else None
        sources.append({
            "source": now.source,
            "before": describe(before) if before is not None else None,
            "held": describe(now),
            "header_before": before.header if before is not None else None,
            "header_held": now.header,
        })  # fmt: skip
    run = queries.run_dict(queries.find_run(ledger, str(hold["run_id"])))
    previous = holds.previous_run(ledger, hold)
    return {
        "hold": {k: v for k, v in hold.items() if k not in HIDDEN},
        "run": {k: run[k] for k in ("run_id", "started_at", "counts", "exit_code")},
        "previous_run": None if previous is None else queries.run_dict(previous),
        "sources": sources,
        "items": [queries.item_dict(r) for r in rows[:JSON_ITEMS_CAP]],
        "items_total": len(rows),
        "approve": f"kprov holds approve {hold['hold_id']}",
        "dismiss": f"kprov holds dismiss {hold['hold_id']}",
    }


def show_holds(holds: Sequence[Mapping[str, Any]], view: View, *, every: bool) -> None:
    if not holds:
        what = "no hold recorded" if every else "no hold is waiting for a decision"
        sys.stdout.write(f"{what}\n")
        return
    rows = [
        (local_time(h["created_at"]), h["hold_id"], h["state"], h["job"], f"{h['items']:,}",
         "; ".join(t["guard"] for t in h["trips"]))
        for h in holds
    ]  # fmt: skip
    _table(view, ("when", "hold", "state", "job", "items", "guards"), rows)


def show_hold(detail: Mapping[str, Any], view: View) -> None:
    hold = detail["hold"]
    lines = [
        f"hold {hold['hold_id']}: {_state(hold)}",
        f"made by run {hold['run_id']} (kprov {hold['job']}) at "
        f"{local_time(hold['created_at'])}, by {hold['os_user']} on {hold['host']}, profile "
        f"{hold['profile']} ({hold['base_url']})",
        f"withheld {hold['items']:,} item(s):",
    ]
    lines.extend(f"  {trip['guard']}: {trip['why']}" for trip in hold["trips"])
    for source in detail["sources"]:
        lines.append(f"source {source['source']}:")
        lines.append(f"  judged against: {source['before'] or 'no earlier export'}")
        lines.append(f"  held:           {source['held']}")
        if source["header_before"] is not None and source["header_before"] != source["header_held"]:
            lines.append(f"  columns before: {source['header_before']}")
            lines.append(f"  columns now:    {source['header_held']}")
    previous = detail["previous_run"]
    if previous is not None:
        lines.append(
            f"the run before: {previous['run_id']} at {local_time(previous['started_at'])}: "
            f"{counts_text(previous['counts'])}"
        )
    lines.append(f"this run: {counts_text(detail['run']['counts'])}")
    cap = TERMINAL_CAP * 5 if view.terminal else PLAIN_CAP
    lines.extend(_held_lines(detail["items"][:cap]))
    if detail["items_total"] > cap:
        lines.append(f"... and {detail['items_total'] - cap:,} more (--json lists up to "
                     f"{JSON_ITEMS_CAP:,})")  # fmt: skip
    if hold["state"] == "open":
        lines.append(f"approve: {detail['approve']}    dismiss: {detail['dismiss']}")
    sys.stdout.write("".join(_plain(line) + "\n" for line in lines))


def _held_lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The held items, grouped by the reason their guard gave (said once, with how many it
    withheld), each then in a line of its own: what it does, and its own reason."""
    from kprov.provision.guards import withheld_parts

    groups: dict[tuple[str, str], list[str]] = {}
    for item in items:
        why, own = withheld_parts(str(item["reason"]))
        line = _item_line({**item, "outcome": str(item["action"]).replace("_", " "),
                           "detail": "", "reason": own})  # fmt: skip
        groups.setdefault((str(item.get("guard") or "?"), why), []).append(f"  {line}")
    lines = []
    for (guard, why), held in groups.items():
        lines.append(f"{guard}, {len(held):,} item(s): {why or 'withheld'}")
        lines.extend(held)
    return lines


def _state(hold: Mapping[str, Any]) -> str:
    state = str(hold["state"])
    if state == "open":
        return "open, waiting for a decision"
    by = f" by {hold['decided_by']}" if hold["decided_by"] else ""
    run = f" (run {hold['decided_run']})" if hold["decided_run"] else ""
    return f"{state}{by} at {local_time(hold['decided_at'])}{run}"
