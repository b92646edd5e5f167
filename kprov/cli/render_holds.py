"""Showing holds (`kprov holds list`, `kprov holds show`): the values those commands return
for the one renderer (``render.show_value``): a table, and one hold's detail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kprov.cli.render import PLAIN_CAP, TERMINAL_CAP
from kprov.cli.render_data import Column, Screen, Table
from kprov.cli.render_history import counts_text, item_line, local_time
from kprov.cli.render_json import JSON_ITEMS_CAP

if TYPE_CHECKING:
    from kprov.state.ledger import Ledger

HIDDEN = ("run_key",)


def hold_detail(ledger: Ledger | None, ref: str) -> dict[str, Any]:
    """Everything `holds show` says of one hold, as data: the hold, its items, the sources
    it held beside the exports they were judged against, and the run before it."""
    from kprov.provision.guards_judge import describe
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


HOLD_COLUMNS = (
    Column("when", wrap=False), Column("hold", wrap=False), Column("state", wrap=False),
    Column("job"), Column("items", wrap=False, right=True), Column("guards"),
)  # fmt: skip


def holds_table(holds: Sequence[Mapping[str, Any]], *, every: bool) -> Table:
    """The holds (`holds list`): under `holds` in JSON, as the ledger keeps them."""
    empty = "no hold recorded" if every else "no hold is waiting for a decision"
    return Table("holds", HOLD_COLUMNS, holds, display=_hold_row, empty=empty)


def _hold_row(h: Mapping[str, Any]) -> dict[str, str]:
    return {"when": local_time(h["created_at"]), "hold": h["hold_id"], "state": h["state"],
            "job": h["job"], "items": f"{h['items']:,}",
            "guards": "; ".join(t["guard"] for t in h["trips"])}  # fmt: skip


@dataclass(frozen=True)
class HoldDetail:
    """One hold (`holds show`): ``hold_detail``'s keys in JSON, its story for people."""

    detail: Mapping[str, Any]
    failed: bool = field(default=False, init=False)

    def data(self) -> Mapping[str, Any]:
        return self.detail

    def show(self, screen: Screen) -> None:
        for line in hold_lines(self.detail, TERMINAL_CAP * 5 if screen.terminal else PLAIN_CAP):
            screen.line(line)


def hold_lines(detail: Mapping[str, Any], cap: int) -> list[str]:
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
    lines.extend(_held_lines(detail["items"][:cap]))
    if detail["items_total"] > cap:
        lines.append(f"... and {detail['items_total'] - cap:,} more (--json lists up to "
                     f"{JSON_ITEMS_CAP:,})")  # fmt: skip
    if hold["state"] == "open":
        lines.append(f"approve: {detail['approve']}    dismiss: {detail['dismiss']}")
    return lines


def _held_lines(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The held items, grouped by the reason their guard gave (said once, with how many it
    withheld), each then in a line of its own: what it does, and its own reason."""
    from kprov.provision.guards import withheld_parts

    groups: dict[tuple[str, str], list[str]] = {}
    for item in items:
        why, own = withheld_parts(str(item["reason"]))
        line = item_line({**item, "outcome": str(item["action"]).replace("_", " "),
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
