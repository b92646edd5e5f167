"""`kprov history`: what every run did, when, by whom and why, from the run ledger."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import OUTPUT_PANEL
from kprov.cli.output import globals_of, guarded
from kprov.cli.render_data import Message, Shown
from kprov.cli.run_options import LOCK_TIMEOUT_OPTION
from kprov.errors import InputError

if TYPE_CHECKING:
    from kprov.config import Settings
    from kprov.state.ledger import Ledger

EXPORT = "export"
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([dhm])$")


@guarded
def history(
    ctx: typer.Context,
    run_id: str | None = typer.Argument(
        None,
        metavar="[RUN_ID|export]",
        help="A run's id (or the start of it): its items and inputs. `export`: the whole "
        "ledger as JSON lines, for archiving.",
        show_default=False,
    ),
    person: str | None = typer.Option(
        None,
        "--person",
        metavar="ID",
        help="Every event of one person across runs (external id or SIS id): created, "
        "registered, moved, removed, failed, with run, time, class and origin.",
        show_default=False,
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="WHEN",
        help="Only runs started since: a date (2026-11-01), a time (2026-11-01T02:00) or an "
        "age (7d, 36h, 90m).",
        show_default=False,
    ),
    limit: int = typer.Option(
        50, "--limit", "-n", min=1, metavar="N", help="Runs listed, newest first."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        metavar="FILE",
        help="With `export`: write the JSON lines to FILE (0600) instead of standard output.",
        rich_help_panel=OUTPUT_PANEL,
        show_default=False,
    ),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> Shown | None:
    """Show the run ledger: the last runs, one run's items, or one person's events.

    Every command that plans or sends records its run (start, end, exit code, OS user, host,
    inputs with their SHA-256, and each item it planned with its outcome and file:line).
    Reading takes no lock: history can be read while a run writes (only a ledger an older
    kprov wrote is first upgraded, under the lock: --lock-timeout).

    \b
    Examples:
      kprov history
      kprov history --person 100210 --json
      kprov history kprov-3f2a9c1b7d04
      kprov history --since 7d
      kprov history export --out ledger-2026.jsonl
    """
    g = globals_of(ctx)
    after = parse_since(since) if since else None
    if run_id == EXPORT:
        return _export(ctx, after, out, lock_timeout)
    if out is not None:
        raise InputError("--out is for `kprov history export`")
    if person is not None and run_id is not None:
        raise InputError("give a RUN_ID or --person, not both")
    if person is not None and not person.strip():  # '' is the SIS id of everyone without one
        raise InputError("--person needs an id: an external id or a SIS id")
    settings = g.settings()
    with opened_ledger(settings.state_dir, lock_timeout) as ledger:
        if person is not None:
            return _person(ledger, person, after, settings)
        if run_id is not None:
            return _one_run(ledger, run_id, settings.state_dir)
        from kprov.cli.render_history import run_list
        from kprov.state import ledger_queries as queries

        runs = queries.recent_runs(ledger, since=after, limit=limit) if ledger else []
        shown = [queries.run_dict(r) for r in runs]
        for run in shown:
            run["running"] = _running(run, settings.state_dir)
        return run_list(shown)


def _person(ledger: Ledger | None, person: str, after: float | None, settings: Settings) -> Shown:
    """The ledger's events of *person*; after an item a killed run left unfinished, what
    the journals record of it (``provision.unrecorded``)."""
    from kprov.cli.render_history import person_events
    from kprov.provision.run_record import event_record
    from kprov.provision.unrecorded import with_journal_events
    from kprov.state import ledger_queries as queries

    rows = queries.person_events(ledger, person.strip(), since=after) if ledger else []
    events = [event_record(r) for r in rows]
    running: set[str] = set()  # a run still writing ended nothing: its outcomes are to come
    for run_id in {e["run_id"] for e in events if e["run_ended_at"] is None}:
        if ledger and _running(
            queries.run_dict(queries.find_run(ledger, run_id)), settings.state_dir
        ):
            running.add(run_id)
    for event in events:  # as the list of runs says it: not unfinished while it runs
        if event["run_id"] in running and event["event"] == "unfinished":
            event["event"] = "running"
    return person_events(
        person,
        with_journal_events(events, settings.mapping_path, settings.state_dir, running=running),
    )


def _one_run(ledger: Ledger | None, run_id: str, state_dir: Path) -> Shown:
    from kprov.cli.render_history import JSON_ITEMS_CAP, RunDetail
    from kprov.state import ledger_queries as queries
    from kprov.state.ledger_guards import run_hold

    if ledger is None:
        raise InputError(f"no run {run_id!r}: nothing is recorded yet")
    found = queries.run_dict(queries.find_run(ledger, run_id))
    found["running"] = _running(found, state_dir)
    inputs = [dict(r) for r in queries.run_inputs(ledger, found["run_id"])]
    items = queries.run_items(ledger, found["run_id"], limit=JSON_ITEMS_CAP)
    total = queries.count_items(ledger, found["run_id"])
    rows = [queries.item_dict(r) for r in items]
    return RunDetail(found, inputs, rows, total, hold=run_hold(ledger, found["run_id"]))


def _export(
    ctx: typer.Context, after: float | None, out: Path | None, timeout: float
) -> Shown | None:
    """JSON lines, one record a line: each run, then its inputs, then its items; on stdout
    (the export is the output: no envelope), or to --out FILE (then the envelope says so)."""
    import json

    from kprov.state import ledger_queries as queries

    g = globals_of(ctx)
    if g.json and out is None:
        raise InputError(
            "`history export` prints JSON lines, not one document",
            hint="Drop --json, or add --out FILE (then --json reports what was written).",
        )
    settings = g.settings()
    written = 0
    with opened_ledger(settings.state_dir, timeout) as ledger:
        if ledger is None:
            records: Any = iter(())
        else:
            records = queries.export_records(ledger, since=after)
        if out is None:
            for record in records:
                sys.stdout.write(json.dumps(record, default=str) + "\n")
            return None
        from kprov.state.files import create_private

        if not out.parent.is_dir():
            raise InputError(f"--out {out}: the folder {out.parent} does not exist")
        with create_private(out) as handle:
            for record in records:
                handle.write(json.dumps(record, default=str) + "\n")
                written += 1
    said = f"kprov: {written:,} record(s) written to {out}"
    return Message([said], {"out": str(out), "records": written}, err=True)


class opened_ledger:
    """The ledger for reading (None when the state has none yet). No lock is taken, unless
    the ledger predates this kprov and must first be upgraded (which writes it)."""

    def __init__(self, state_dir: Path, lock_timeout: float) -> None:
        self.state_dir = state_dir
        self.lock_timeout = lock_timeout
        self.ledger: Ledger | None = None

    def __enter__(self) -> Ledger | None:
        from kprov.state.ledger import Ledger
        from kprov.state.lock import StateLock

        self.ledger = Ledger.open(self.state_dir, create=False, migrate=False)
        if self.ledger is not None and self.ledger.needs_migration:
            self.ledger.close()
            with StateLock(self.state_dir, timeout=self.lock_timeout, command="kprov history"):
                self.ledger = Ledger.open(self.state_dir, create=False)
        return self.ledger

    def __exit__(self, *exc: object) -> None:
        if self.ledger is not None:
            self.ledger.close()


def _running(run: dict[str, Any], state_dir: Path) -> bool:
    """An unfinished run is *running* while its process holds the state lock; otherwise it
    was killed (or its machine stopped) before it could record its end."""
    if not run["unfinished"]:
        return False
    from kprov.state.lock import current_holder
    from kprov.state.portable import process_alive

    holder = current_holder(state_dir)
    if not holder or holder.get("pid") != run["pid"] or holder.get("host") != run["host"]:
        return False
    try:
        return process_alive(int(run["pid"]))
    except (ValueError, TypeError):
        return False


def parse_since(text: str, *, now: float | None = None) -> float:
    """--since: an age (7d, 36h, 90m) back from *now*, or a local date or time."""
    now = time.time() if now is None else now
    cleaned = text.strip()
    relative = _RELATIVE.match(cleaned.lower())
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now - amount * {"d": 86_400, "h": 3_600, "m": 60}[unit]
    for pattern in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return time.mktime(time.strptime(cleaned, pattern))
        except ValueError:
            continue
    if cleaned.endswith("Z"):
        import calendar

        for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ"):
            try:
                return float(calendar.timegm(time.strptime(cleaned, pattern)))
            except ValueError:
                continue
    raise InputError(
        f"--since {text!r}: give a date (2026-11-01), a time (2026-11-01T02:00, local; "
        "append Z for UTC) or an age (7d, 36h, 90m)"
    )
