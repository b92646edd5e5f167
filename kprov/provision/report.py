"""Per-line reports (--report FILE.csv|FILE.json) for partners to reconcile with their SIS."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kprov.errors import InputError
from kprov.rosters.model import Person

REPORT_FIELDS = (
    "file",
    "line",
    "external_user_id",
    "sis_id",
    "role",
    "instance",
    "outcome",
    "account_id",
    "reason",
)


def report_row(
    person: Person, *, instance: str, outcome: str, account_id: str, reason: str
) -> dict[str, Any]:
    """One report row: where the line came from, who it names, and what became of it."""
    return {
        "file": person.origin.file,
        "line": person.origin.line,
        "external_user_id": person.external_id,
        "sis_id": person.sis_id or "",
        "role": person.role,
        "instance": instance,
        "outcome": outcome,
        "account_id": account_id,
        "reason": reason,
    }


def check_report_path(path: Path) -> None:
    """Refuse an unknown report format before any work is done."""
    if path.suffix.lower() not in (".csv", ".json"):
        raise InputError(f"--report {path}: use a .csv or .json file name")


def write_report(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one row per roster line; returns how many rows were written."""
    check_report_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    materialised = [{k: row.get(k) for k in REPORT_FIELDS} for row in rows]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(materialised, indent=1) + "\n", encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=REPORT_FIELDS)
            writer.writeheader()
            writer.writerows(materialised)
    return len(materialised)
