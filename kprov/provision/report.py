"""Reports (--report FILE.csv|.json|.html): every line's fate, for plans and runs alike.

CSV and JSON list every row (kept lines, removals and skipped rows included) for partners to
reconcile with their SIS. HTML is one self-contained page a person can open or mail: totals,
a per-class table, the failures with their reasons, and who was removed.

Rows hold outside text (ids and keys from the SIS, server messages): every format escapes
control, bidi and invisible characters (``outside_text.printable``), and CSV cells that a
spreadsheet would run as formulas start with a ``'`` (``outside_text.csv_cell``).
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kprov.errors import InputError, StorageError
from kprov.outside_text import csv_cell, printable_data
from kprov.provision.plan import Item, Plan, plan_fate
from kprov.provision.result import FAILING, RunResult, run_fate

REPORT_FIELDS = ("file", "line", "external_user_id", "sis_id", "role", "instance", "action",
                 "outcome", "account_id", "registration_id", "reason")  # fmt: skip
FORMATS = (".csv", ".json", ".html")


def check_report_path(path: Path) -> None:
    """Refuse an unknown report format before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise InputError(f"--report {path}: use a .csv, .json or .html file name")


def create_private(path: Path, *, append: bool = False) -> IO[str]:
    """A report or log file: 0600, never through a symlink, in a folder that exists."""
    from kprov.state.files import create_private as open_private

    return open_private(path, append=append)


def _row(item: Item, outcome: str, reason: str, **ids: str) -> dict[str, Any]:
    return {
        "file": item.origin.file if item.origin else "",
        "line": item.origin.line if item.origin else "",
        "external_user_id": item.external_id,
        "sis_id": item.sis_id,
        "role": item.role,
        "instance": item.instance,
        "action": item.action.value,
        "outcome": outcome,
        "account_id": ids.get("account_id") or item.account_id,
        "registration_id": ids.get("registration_id") or item.registration_id,
        "reason": reason,
    }


def report_rows(subject: Plan | RunResult, *, every_line: bool = True) -> Iterator[dict[str, Any]]:
    """One row per plan item, then (unless *every_line* is False) per kept line and skipped
    row, in the plan's order."""
    plan = subject.plan if isinstance(subject, RunResult) else subject
    if isinstance(subject, RunResult):
        for o in subject.outcomes:
            yield _row(o.item, run_fate(o), o.detail or o.item.reason, account_id=o.account_id,
                       registration_id=o.registration_id)  # fmt: skip
    else:
        for item in plan.items:
            yield _row(item, plan_fate(item, plan), item.reason)
    if not every_line:
        return
    for reason, person in ((r, p) for r, people in plan.kept.items() for p in people):
        yield {
            "file": person.origin.file, "line": person.origin.line,
            "external_user_id": person.external_id, "sis_id": person.sis_id or "",
            "role": person.role, "instance": person.instance_key or plan.default_instance,
            "action": "none", "outcome": reason, "account_id": "", "registration_id": "",
            "reason": "",
        }  # fmt: skip
    for skipped in plan.skipped:
        yield {
            "file": skipped.origin.file, "line": skipped.origin.line,
            "external_user_id": skipped.external_id, "sis_id": "", "role": "", "instance": "",
            "action": "none", "outcome": "skipped", "account_id": "", "registration_id": "",
            "reason": skipped.reason,
        }  # fmt: skip


def write_report(path: Path, subject: Plan | RunResult, *, title: str) -> int:
    """Write the report; returns how many rows it holds."""
    check_report_path(path)
    suffix = path.suffix.lower()
    rows = report_rows(subject)
    count = 0
    try:
        with create_private(path) as handle:
            if suffix == ".csv":
                writer = csv.DictWriter(handle, fieldnames=REPORT_FIELDS)
                writer.writeheader()
                for row in rows:  # csv_cell makes each cell printable, then formula-safe
                    writer.writerow({k: csv_cell(v) for k, v in row.items()})
                    count += 1
            elif suffix == ".json":
                materialised = [printable_data(row) for row in rows]
                count = len(materialised)
                json.dump(materialised, handle, indent=1)
                handle.write("\n")
            else:
                materialised = [printable_data(row) for row in rows]
                count = len(materialised)
                handle.write(_html(title, subject, materialised))
    except OSError as exc:
        raise StorageError(f"cannot write the report {path}: {exc.strerror}") from None
    return count


def _html(title: str, subject: Plan | RunResult, rows: list[dict[str, Any]]) -> str:
    e = html.escape
    counts = subject.counts()
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row["instance"]:
            per_class[row["instance"]][_column(row["outcome"])] += 1
    failures = [r for r in rows if r["outcome"] in FAILING or r["outcome"] == "cannot"]
    removed = [r for r in rows if r["action"] == "unregister"]
    columns = ("added", "removed", "failed", "unchanged", "other")

    def table(head: tuple[str, ...], body: list[tuple[Any, ...]]) -> str:
        cells = "".join(f"<th>{e(h)}</th>" for h in head)
        lines = "".join(
            "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in line) + "</tr>" for line in body
        )
        return f"<table><tr>{cells}</tr>{lines}</table>"

    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}"
        "th{background:#eee}.bad td{color:#a00}</style></head><body>",
        f"<h1>{e(title)}</h1><h2>Totals</h2>",
        table(("outcome", "count"), sorted(counts.items())),
        "<h2>Per class</h2>",
        table(("instance", *columns),
              [(k, *(per_class[k][c] for c in columns)) for k in sorted(per_class)]),
        f"<h2>Failures ({len(failures)})</h2>",
        table(("where", "external id", "instance", "outcome", "reason"),
              [(f"{r['file']}:{r['line']}", r["external_user_id"], r["instance"], r["outcome"],
                r["reason"]) for r in failures]),
        f"<h2>Removals ({len(removed)})</h2>",
        table(("external id", "instance", "role", "outcome", "reason"),
              [(r["external_user_id"], r["instance"], r["role"], r["outcome"], r["reason"])
               for r in removed]),
        "</body></html>\n",
    ]  # fmt: skip
    return "".join(parts)


def _column(outcome: str) -> str:
    if outcome in ("registered", "registered_id_unknown", "would_register"):
        return "added"
    if outcome in ("removed", "would_remove"):
        return "removed"
    if outcome in FAILING or outcome == "cannot":
        return "failed"
    if outcome in ("already_registered", "already_mapped"):
        return "unchanged"
    return "other"
