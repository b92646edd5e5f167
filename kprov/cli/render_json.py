"""The one JSON envelope, and the documents of a plan and a run inside it.

Every JSON document kprov prints has the same envelope: ``ok``, ``command``, ``exit_code``
and ``error`` (null, or ``{code, type, message, hint, ...}``); plans and runs add
``run_id``, ``mode``, ``counts`` and ``items``. Outside text in it is escaped as everywhere
else, and it is ASCII only. Shown by ``render`` (--json); run reports and the ledger reuse
``error_json`` and ``run_document``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any, TextIO

from kprov.errors import ExitCode, KprovError
from kprov.outside_text import printable_data

if TYPE_CHECKING:
    from kprov.provision.plan import Item, Plan
    from kprov.provision.result import RunResult

JSON_ITEMS_CAP = 10_000  # --json lists at most this many items; reports list every one


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


def guards_json(plan: Plan, withheld: list[Item]) -> list[dict[str, Any]]:
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
        guards=guards_json(plan, withheld), warnings=list(plan.warnings),
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
        guards=guards_json(result.plan, withheld), hold_id=result.hold_id or None,
        approve=f"kprov holds approve {result.hold_id}" if result.hold_id else None,
        warnings=result.warnings, requests=result.requests, rate_limited=result.rate_limited,
        seconds=round(result.elapsed, 3),
        **(_items_json(rows, len(result.outcomes)) if items else {}),
    )  # fmt: skip
