"""Reading the run ledger: the questions support asks (`kprov history`), each one indexed
query. "Where was student 100210 enrolled, and when, by which run, from which export line,
was she removed?" is ``person_events``; "what did last night do?" is ``recent_runs`` and
``run_items``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kprov.errors import InputError
from kprov.state.ledger import Ledger

Record = dict[str, Any]

RUN_FIELDS = (
    "run_id, command, mode, started_at, ended_at, exit_code, error, os_user, host, pid, "
    "kprov_version, profile, base_url, argv, counts, requests, requests_ok, rate_limited, parent, "
    "job"
)
ITEM_FIELDS = (
    "seq, action, outcome, person, sis_id, role, instance, instance_name, instance_id, "
    "account_id, registration_id, file, line, reason, change, spec, role_change, detail, guard"
)


def recent_runs(
    ledger: Ledger, *, since: float | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest runs first (at most *limit*), started at or after *since*."""
    return ledger.query(
        f"SELECT {RUN_FIELDS} FROM runs WHERE started_at >= ? "
        "ORDER BY started_at DESC, id DESC LIMIT ?",
        (since if since is not None else 0.0, limit),
    )


def find_run(ledger: Ledger, ref: str) -> dict[str, Any]:
    """The run whose id is *ref*, or starts with it (a unique prefix, as git takes them);
    InputError (exit 2) naming what to do otherwise."""
    ref = ref.strip()
    rows = ledger.query(f"SELECT {RUN_FIELDS} FROM runs WHERE run_id = ?", (ref,))
    if not rows and len(ref) >= 4:
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = ledger.query(
            f"SELECT {RUN_FIELDS} FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
            (escaped + "%",),
        )
    if len(rows) == 1:
        return rows[0]
    if rows:
        raise InputError(f"more than one run starts with {ref!r}: give more of its id")
    raise InputError(
        f"no run {ref!r} in the ledger",
        hint="`kprov history` lists the runs it keeps (older ones are pruned after history_days).",
    )


def run_inputs(ledger: Ledger, run_id: str) -> list[dict[str, Any]]:
    return ledger.query(
        "SELECT i.path, i.kind, i.size, i.sha256 FROM inputs i JOIN runs r ON r.id = i.run "
        "WHERE r.run_id = ? ORDER BY i.rowid",
        (run_id,),
    )


def run_items(ledger: Ledger, run_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    return ledger.query(
        f"SELECT {_prefixed(ITEM_FIELDS, 'i')} FROM items i JOIN runs r ON r.id = i.run "
        "WHERE r.run_id = ? ORDER BY i.seq LIMIT ?",
        (run_id, -1 if limit is None else limit),
    )


def count_items(ledger: Ledger, run_id: str) -> int:
    rows = ledger.query(
        "SELECT count(*) AS n FROM items i JOIN runs r ON r.id = i.run WHERE r.run_id = ?",
        (run_id,),
    )
    return int(rows[0]["n"])


def person_events(
    ledger: Ledger, person: str, *, since: float | None = None
) -> list[dict[str, Any]]:
    """Every item naming *person* (external id or SIS id) in every run kept, oldest first,
    with the run's time, operator and host. Two index look-ups, however long the history."""
    return ledger.query(
        f"SELECT r.run_id, r.command, r.mode, r.started_at, r.ended_at, r.exit_code, "
        f"r.os_user, r.host, r.profile, {_prefixed(ITEM_FIELDS, 'i')} "
        "FROM items i JOIN runs r ON r.id = i.run "
        "WHERE (i.person = ? OR i.sis_id = ?) AND r.started_at >= ? "
        "ORDER BY r.started_at, r.id, i.seq",
        (person, person, since if since is not None else 0.0),
    )


def last_request_ok(ledger: Ledger) -> float | None:
    """When a request last succeeded (the end of the last run with an answered request)."""
    rows = ledger.query(
        "SELECT max(coalesce(ended_at, started_at)) AS t FROM runs WHERE requests_ok > 0"
    )
    value = rows[0]["t"] if rows else None
    return float(value) if value is not None else None


def last_clean(ledger: Ledger, command: str) -> float | None:
    """When a run of *command* (not a plan) last ended with exit 0."""
    rows = ledger.query(
        "SELECT max(ended_at) AS t FROM runs WHERE command = ? AND mode != 'plan' "
        "AND exit_code = 0",
        (command,),
    )
    value = rows[0]["t"] if rows else None
    return float(value) if value is not None else None


def export_records(ledger: Ledger, *, since: float | None = None) -> Iterator[dict[str, Any]]:
    """The ledger as records, oldest run first: each run, then its inputs, then its items
    (for `kprov history export`: JSON lines an archive or a spreadsheet can take)."""
    runs = ledger.stream(
        f"SELECT id, {RUN_FIELDS} FROM runs WHERE started_at >= ? ORDER BY started_at, id",
        (since if since is not None else 0.0,),
    )
    for run in list(runs):
        key = run["id"]
        yield {"record": "run", **run_dict(run)}
        for row in ledger.stream(
            "SELECT path, kind, size, sha256 FROM inputs WHERE run = ? ORDER BY rowid", (key,)
        ):
            yield {"record": "input", "run_id": run["run_id"], **row}
        for row in ledger.stream(
            f"SELECT {ITEM_FIELDS} FROM items WHERE run = ? ORDER BY seq", (key,)
        ):
            yield {"record": "item", "run_id": run["run_id"], **item_dict(row)}


def run_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A run row with its JSON columns decoded and its times as ISO 8601 UTC."""
    data = {k: v for k, v in row.items() if k != "id"}
    data["argv"] = _json(data.get("argv"), [])
    data["counts"] = _json(data.get("counts"), {})
    data["error"] = _json(data.get("error"), None)
    started, ended = row["started_at"], row["ended_at"]
    data["seconds"] = round(ended - started, 3) if ended is not None else None
    data["started_at"] = iso(started)
    data["ended_at"] = iso(ended)
    data["unfinished"] = row["ended_at"] is None
    return data


def item_dict(row: dict[str, Any]) -> dict[str, Any]:
    data = dict(row)
    data["spec"] = _json(data.get("spec"), None)
    data["role_change"] = bool(data.get("role_change"))
    return data


def iso(value: float | None) -> str | None:
    if value is None:
        return None
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(value)))


def _json(text: Any, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _prefixed(fields: str, alias: str) -> str:
    return ", ".join(f"{alias}.{name.strip()}" for name in fields.split(","))
