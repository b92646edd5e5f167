"""`kprov mapping`: read, export and verify the external id -> account id mapping."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer

from kprov.cli.common import MAPPING_OPTION
from kprov.cli.output import command_group, globals_of, guarded, make_view, warn
from kprov.cli.render_data import Column, Message, Screen, Table
from kprov.cli.run_options import CONCURRENCY_OPTION, LOCK_TIMEOUT_OPTION
from kprov.errors import InputError

app = command_group(
    "Show, export, verify or rebuild the mapping file. Example: kprov mapping show stu-000123"
)


@app.command("show")
@guarded
def show(
    ctx: typer.Context,
    external_id: str = typer.Argument(
        ..., metavar="ID", help="External id (or SIS id, matched too)."
    ),
    mapping: str | None = MAPPING_OPTION,
) -> Table:
    """Show every mapping row of one id (its history, newest last).

    \b
    Examples:
      kprov mapping show stu-000123
    """
    from kprov.state.mapping import MappingJournal

    settings = globals_of(ctx).settings(mapping)
    rows = (
        [
            e
            for e in MappingJournal(settings.mapping_path).entries()
            if external_id in (e.external_user_id, e.sis_id)
        ]
        if settings.mapping_path.exists()
        else []
    )
    if not rows:
        raise InputError(f"{external_id!r} is not in the mapping ({settings.mapping_path})")
    found = [dict(zip(_FIELDS, e.row(), strict=True)) for e in rows]
    return Table("rows", [Column(f, wrap=f != "account_id") for f in _FIELDS], found)


_FIELDS = ("external_user_id", "account_id", "created_at", "sis_id", "status")


@app.command("export")
@guarded
def export(
    ctx: typer.Context,
    export_format: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
    mapping: str | None = MAPPING_OPTION,
) -> MappingExport:
    """Print the mapping as CSV or JSON on stdout.

    One row per id, in its latest state. `--format json` prints a bare list (a file to keep);
    the global `--json` prints it as `mapping` inside kprov's usual envelope.

    \b
    Examples:
      kprov mapping export --format json > mapping.json
    """
    from kprov.state.mapping import HEADER, MappingJournal

    if export_format not in ("csv", "json"):
        raise InputError(f"--format {export_format!r}: use csv or json")
    settings = globals_of(ctx).settings(mapping)
    named = settings.origins["mapping"]
    if named.kind in ("flag", "env") and not settings.mapping_path.exists():
        raise InputError(  # a mistyped path must not export as "no one is mapped"
            f"{named.location} {settings.mapping_path}: no such mapping file",
            hint="Check the path (`kprov config show` shows the mapping a run uses).",
        )
    journal = MappingJournal(settings.mapping_path)
    latest = {e.external_user_id: e for e in journal.entries()}
    for notice in journal.torn_notice():  # read without the lock: never repaired here
        warn(notice)
    if not latest:  # a backup job must not overwrite a good backup with a lost mapping
        from kprov.state.rebuild import refuse_an_unreadable_export

        refuse_an_unreadable_export(settings.state_dir, journal)
    return MappingExport([e.row() for e in latest.values()], HEADER, export_format)


@dataclass(frozen=True)
class MappingExport:
    """The mapping, one row per id: CSV (spreadsheet-safe) or a bare JSON list for people
    and files; under `mapping` in the envelope with --json."""

    rows: Sequence[Sequence[str]]
    header: Sequence[str]
    format: str
    failed: bool = field(default=False, init=False)

    def data(self) -> Mapping[str, Any]:
        return {"mapping": self._dicts()}

    def _dicts(self) -> list[dict[str, str]]:
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def show(self, screen: Screen) -> None:
        if self.format == "json":
            import json

            json.dump(self._dicts(), sys.stdout, indent=1)
            sys.stdout.write("\n")
            return
        import csv

        from kprov.outside_text import csv_row

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(self.header)  # cells a spreadsheet would run as formulas are neutralised
        writer.writerows(csv_row(row) for row in self.rows)


@app.command("rebuild")
@guarded
def rebuild(
    ctx: typer.Context,
    mapping: str | None = MAPPING_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> Message:
    """Rebuild a lost mapping from the account ids the registry recorded.

    Every registration kprov recorded names the account and the external id it was made for:
    those pairs are added, exactly (status `recovered`); contradictions are left out and
    named, and what the registry never knew is said. Sends nothing; adds nothing to a
    mapping that already holds them all. Restoring a backup of the mapping is better still.

    \b
    Examples:
      kprov mapping rebuild
    """
    from kprov.cli.common import command_line, owner_of
    from kprov.cli.run_session import record_mapping_rebuild
    from kprov.state.local import open_local_state

    settings = globals_of(ctx).settings(mapping)
    with open_local_state(
        settings.state_dir,
        settings.mapping_path,
        lock_timeout=lock_timeout,
        command=command_line(),
        owner=owner_of(settings),
        rebuild_mapping=True,
    ) as state:
        assert state.rebuilt is not None
        found = state.rebuilt
        if found.recovered:
            record_mapping_rebuild(settings, found)
        summary = found.summary(settings.mapping_path)
        for warning in state.warnings:
            if warning not in summary:
                warn(warning)
    return Message(summary, {
        "mapping": str(settings.mapping_path),
        "recovered": len(found.recovered),
        "already": found.already,
        "left_out": found.conflicts,
        "without_external_id": found.unnamed,
        "malformed": found.malformed,
    })  # fmt: skip


@app.command("verify")
@guarded
def verify(
    ctx: typer.Context,
    sample: int | None = typer.Option(
        None, "--sample", min=1, metavar="N", help="Check only N random ids.", show_default=False
    ),
    seed: int | None = typer.Option(None, "--seed", metavar="N", help="Seed for --sample."),
    concurrency: int = CONCURRENCY_OPTION,
    mapping: str | None = MAPPING_OPTION,
) -> Message:
    """Check mapped ids against the API; exit 1 on any mismatch.

    Each id is checked under that user's own token, which proves the id -> account link.

    \b
    Examples:
      kprov mapping verify --sample 200
    """
    from dataclasses import asdict

    from kprov.cli.session import build_client
    from kprov.provision.verify import select_ids, verify_ids
    from kprov.state.mapping import MappingJournal

    g = globals_of(ctx)
    view = make_view(g)
    settings = g.settings(mapping)
    index = MappingJournal(settings.mapping_path).load()
    for notice in index.repairs:  # read without the lock: never repaired here
        warn(notice)
    ids = select_ids(index, sample, seed)
    if view.remarks:  # on stderr, before the wait it announces
        sys.stderr.write(
            f"checking {len(ids):,} of {len(index):,} mapped ids: {len(ids):,} token "
            f"requests and at most as many reads, each under the user's own token; "
            f"{_duration_estimate(settings, len(ids), concurrency)}\n"
        )

    from kprov.cli.interrupts import interruptible
    from kprov.cli.progress import Progress

    with (
        build_client(settings, pool_size=concurrency) as client,
        interruptible(client.cancel, g.env.terminal_fds),
        Progress("verify", len(ids), enabled=view.remarks, env=g.env) as progress,
    ):
        client.transport.on_wait = progress.waiting
        done = verify_ids(client, index, ids, concurrency=concurrency, progress=progress.advance)
    if done.stopped_by is not None:
        raise done.stopped_by  # exit code and advice by the one mapping (guarded)
    return Message(
        [f"checked {done.checked:,} ids: {len(done.mismatches)} mismatch(es)"],
        {"checked": done.checked, "mismatches": [asdict(m) for m in done.mismatches]},
        always=[
            f"mismatch: {m.external_user_id}: mapped {m.mapped_account_id}, "
            f"API {m.api_account_id or '-'}: {m.problem}"
            for m in done.mismatches
        ],
        failed=bool(done.mismatches),
    )


def _duration_estimate(settings: Any, count: int, concurrency: int) -> str:
    """How long verification will take, from the token quota and a typical round trip."""
    from kprov.config import quotas_for

    per_minute = quotas_for(settings.profile).get("POST /oauth/token")
    floor = count * 2 * 0.05 / max(1, concurrency)  # two calls of ~50 ms each, in parallel
    if per_minute:
        floor = max(floor, count / (per_minute / 60.0))
    minutes = floor / 60
    shown = f"{floor:,.0f} s" if floor < 120 else f"{minutes:,.0f} min"
    return f"expect about {shown} (use --sample N to check fewer)"
