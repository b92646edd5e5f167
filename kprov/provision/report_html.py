"""The HTML report: one self-contained page an administrator files or mails.

Dated and signed (run, profile, API host, manifest, operator); classes by name as well as
key, with their instructors; every addition, move, removal, hold, withheld and waiting item
and failure listed (not only counted); a table appears only when it has rows. Every value
is HTML-escaped: ids, names and reasons come from rosters and servers.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kprov.provision.plan import MOVED
from kprov.provision.result import FAILING

if TYPE_CHECKING:
    from kprov.provision.report import ReportContext

TABLE_CAP = 5_000  # rows per table; the CSV report lists every line
ADDED = ("registered", "registered_id_unknown", "would_register")
REMOVED = ("removed", "would_remove")
UNCHANGED = ("already_registered", "already_mapped")
STYLE = (
    "body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#eee}.facts th{background:none;font-weight:normal;color:#555}"
    "p.more{color:#555}"
)


def render_html(
    title: str, counts: Mapping[str, int], rows: Sequence[dict[str, Any]], context: ReportContext
) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>",
        _facts(context),
    ]
    if counts:
        parts.append(_section("Totals", ("outcome", "count"), sorted(counts.items())))
    parts.append(_classes(rows, context))
    parts.append(_additions(rows))
    parts.append(_moves(rows))
    parts.append(
        _section(
            "Accounts created",
            ("external id", "SIS id", "from", "outcome"),
            [(r["external_user_id"], r["sis_id"], _where(r), r["outcome"])
             for r in rows if r["action"] == "create_account" and not _withheld(r)],
        )
    )  # fmt: skip
    parts.append(
        _section(
            "Classes created",
            ("class", "outcome"),
            [
                (_class(r), r["outcome"])
                for r in rows
                if r["action"] == "create_instance" and not _withheld(r)
            ],
        )
    )
    parts.append(
        _section(
            "Removals",
            ("external id", "role", "class", "from", "outcome", "reason"),
            [(r["external_user_id"], r["role"], _class(r), _where(r), r["outcome"], r["reason"])
             for r in rows
             if r["action"] == "unregister" and r["change"] != MOVED and not _withheld(r)],
        )
    )  # fmt: skip
    parts.append(
        _section(
            f"Withheld by a guard ({_hold(context)})",
            ("action", "external id", "role", "class", "from", "reason"),
            [(r["action"].replace("_", " "), r["external_user_id"], r["role"], _class(r),
              _where(r), r["reason"]) for r in rows if _withheld(r)],
        )
    )  # fmt: skip
    parts.append(
        _section(
            "Waiting (removals inside their grace: --grace)",
            ("external id", "role", "class", "from", "reason"),
            [(r["external_user_id"], r["role"], _class(r), _where(r), r["reason"])
             for r in rows if r["action"] == "wait"],
        )
    )  # fmt: skip
    parts.append(
        _section(
            "Held (nothing sent; see the reason)",
            ("external id", "role", "class", "from", "reason"),
            [(r["external_user_id"], r["role"], _class(r), _where(r), r["reason"])
             for r in rows if r["action"] == "hold" and r["change"] != MOVED],
        )
    )  # fmt: skip
    parts.append(
        _section(
            "Failures",
            ("from", "external id", "class", "outcome", "reason"),
            [(_where(r), r["external_user_id"], _class(r), r["outcome"], r["reason"])
             for r in rows if r["outcome"] in FAILING or r["outcome"] == "cannot"],
        )
    )  # fmt: skip
    parts.append(
        _section(
            "Rows skipped",
            ("from", "external id", "reason"),
            [(_where(r), r["external_user_id"], r["reason"])
             for r in rows if r["outcome"] == "skipped"],
        )
    )  # fmt: skip
    if not any(parts[3:]):
        parts.append("<p>Nothing to do: the platform already matches the rosters.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _facts(context: ReportContext) -> str:
    facts = [
        ("Date", context.date), ("Run", context.run_id), ("Profile", context.profile),
        ("API", context.api_host), ("Manifest", context.manifest),
        ("Operator", context.operator),
    ]  # fmt: skip
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts if v
    )
    return f"<table class='facts'>{body}</table>" if body else ""


def _classes(rows: Sequence[dict[str, Any]], context: ReportContext) -> str:
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row["instance"] and row["action"] != "create_account":  # an account is no class's
            tally[row["instance"]][_column(row)] += 1
    columns = ("added", "moved in", "moved out", "removed", "withheld", "waiting", "held", "failed",
               "unchanged", "other")  # fmt: skip
    body = []
    for key in sorted(tally):
        line = context.classes.get(key)
        name = line.name if line is not None else ""
        teachers = ", ".join(line.instructors) if line is not None else ""
        body.append((key, name, teachers, *(tally[key][c] or "" for c in columns)))
    return _section("Classes", ("key", "name", "instructors", *columns), body)


def _column(row: Mapping[str, Any]) -> str:
    outcome, moved = row["outcome"], row["change"] == MOVED
    if outcome in ("withheld", "waiting"):
        return outcome
    if outcome in ADDED:
        return "moved in" if moved else "added"
    if outcome in REMOVED or (moved and row["action"] in ("unregister", "hold")):
        return "moved out" if moved else "removed"
    if outcome in FAILING or outcome == "cannot":
        return "failed"
    if outcome == "held":
        return "held"
    if outcome in UNCHANGED:
        return "unchanged"
    return "other"


def _additions(rows: Sequence[dict[str, Any]]) -> str:
    added = [
        r for r in rows if r["action"] == "register" and r["change"] != MOVED and not _withheld(r)
    ]
    return _section(
        "Additions",
        ("external id", "role", "class", "from", "outcome", "note"),
        [(r["external_user_id"], r["role"], _class(r), _where(r), r["outcome"],
          r["reason"] if r["change"] else "") for r in added],
    )  # fmt: skip


def _moves(rows: Sequence[dict[str, Any]]) -> str:
    """One line per move: the joining registration, and what became of the old one."""
    left = {
        (r["external_user_id"], r["reason"].partition(";")[0]): r
        for r in rows
        if r["change"] == MOVED and r["action"] in ("unregister", "hold", "wait")
    }
    body = []
    for row in rows:
        if row["change"] != MOVED or row["action"] != "register":
            continue
        old = left.get((row["external_user_id"], row["reason"]))
        body.append(
            (row["external_user_id"], row["role"], row["reason"].removeprefix("moved "),
             _where(row), row["outcome"], old["outcome"] if old else "",
             old["reason"].partition("; ")[2] if old else "")
        )  # fmt: skip
    return _section(
        "Moves",
        ("external id", "role", "from → to", "line", "joined", "left", "note"),
        body,
    )


def _hold(context: ReportContext) -> str:
    if context.hold:
        return f"hold {context.hold}: kprov holds show, approve or dismiss it"
    return "a run saves them in a hold, for a person to approve or dismiss"


def _withheld(row: Mapping[str, Any]) -> bool:
    return bool(row["outcome"] == "withheld")


def _class(row: Mapping[str, Any]) -> str:
    name = row.get("instance_name") or ""
    return f"{row['instance']} ({name})" if name and name != row["instance"] else row["instance"]


def _where(row: Mapping[str, Any]) -> str:
    return f"{row['file']}:{row['line']}" if row["file"] else ""


def _section(title: str, head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    """A titled table, or nothing at all when it has no rows (no empty tables)."""
    e = html.escape
    rows = list(body)
    if not rows:
        return ""
    shown = rows[:TABLE_CAP]
    cells = "".join(f"<th>{e(h)}</th>" for h in head)
    lines = "".join(
        "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in line) + "</tr>" for line in shown
    )
    more = (
        f"<p class='more'>... and {len(rows) - TABLE_CAP:,} more (the CSV report lists them "
        "all)</p>"
        if len(rows) > TABLE_CAP
        else ""
    )
    return f"<h2>{e(title)} ({len(rows):,})</h2><table><tr>{cells}</tr>{lines}</table>{more}"
