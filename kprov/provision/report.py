"""Reports (--report FILE.csv|.json|.html): every line's fate, for plans and runs alike.

CSV and JSON list every row (kept lines, removals and skipped rows included) for partners to
reconcile with their SIS, each row with the run, date, profile, API host, manifest and
operator it belongs to. HTML is one self-contained page an administrator can file or mail
(``provision.report_html``).

Rows hold outside text (ids and keys from the SIS, server messages): every format escapes
control, bidi and invisible characters (``outside_text.printable``), and CSV cells that a
spreadsheet would run as formulas start with a ``'`` (``outside_text.csv_cell``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kprov.errors import InputError, StorageError
from kprov.outside_text import csv_cell, printable_data
from kprov.provision.plan import Item, Plan, plan_fate
from kprov.provision.result import RunResult, run_fate
from kprov.provision.run_record import ClassLine

REPORT_FIELDS = ("file", "line", "external_user_id", "sis_id", "role", "instance", "action",
                 "outcome", "account_id", "registration_id", "reason", "change")  # fmt: skip
# CSV reports: the same columns first (readers by position keep working), then the context.
CSV_FIELDS = (*REPORT_FIELDS, "instance_name", "run_id", "report_date", "profile", "api_host",
              "manifest", "operator")  # fmt: skip
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
        "change": item.change,
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
            "reason": "", "change": "",
        }  # fmt: skip
    for skipped in plan.skipped:
        yield {
            "file": skipped.origin.file, "line": skipped.origin.line,
            "external_user_id": skipped.external_id, "sis_id": "", "role": "", "instance": "",
            "action": "none", "outcome": "skipped", "account_id": "", "registration_id": "",
            "reason": skipped.reason, "change": "",
        }  # fmt: skip


@dataclass(frozen=True)
class ReportContext:
    """What makes a report something an administrator can file: when, which run, against
    which API, from which manifest, by whom; and the classes by name, with their
    instructors."""

    run_id: str = ""
    date: str = ""  # ISO 8601 UTC
    profile: str = ""
    api_host: str = ""
    manifest: str = ""  # the manifest, or the rosters, the run read
    operator: str = ""  # user@host
    classes: Mapping[str, ClassLine] = field(default_factory=dict)
    hold: str = ""  # the hold a run saves what its guards withheld in

    def columns(self) -> dict[str, str]:
        """The context columns every CSV/JSON row carries (a year of nightly CSV reports
        concatenated still says which night each line is from)."""
        return {
            "run_id": self.run_id, "report_date": self.date, "profile": self.profile,
            "api_host": self.api_host, "manifest": self.manifest, "operator": self.operator,
        }  # fmt: skip


def write_report(
    path: Path, subject: Plan | RunResult, *, title: str, context: ReportContext | None = None
) -> int:
    """Write the report; returns how many rows it holds."""
    from kprov.provision.report_html import render_html

    check_report_path(path)
    context = context or ReportContext()
    suffix = path.suffix.lower()
    extra = context.columns()
    names = {key: line.name for key, line in context.classes.items()}
    rows = ({**row, "instance_name": names.get(row["instance"], ""), **extra}
            for row in report_rows(subject))  # fmt: skip
    count = 0
    try:
        with create_private(path) as handle:
            if suffix == ".csv":
                writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
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
                handle.write(render_html(title, subject.counts(), materialised, context))
    except OSError as exc:
        raise StorageError(f"cannot write the report {path}: {exc.strerror}") from None
    return count
