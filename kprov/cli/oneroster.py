"""`kprov oneroster pull`: what a OneRoster REST source returns, written as a CSV bundle."""

from __future__ import annotations

from pathlib import Path

import typer

from kprov.cli.output import command_group, globals_of, guarded
from kprov.cli.render_data import Message

app = command_group(
    "Pull rosters from a student information system's OneRoster REST API. "
    "Example: kprov oneroster pull semester.yaml --out tonight/"
)


@app.command("pull")
@guarded
def pull_command(
    ctx: typer.Context,
    manifest_path: Path = typer.Argument(
        ..., metavar="MANIFEST", help="A manifest with `oneroster_api:` sources."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        metavar="DIR",
        help="Folder to write the bundle into (created if missing; its parent must exist).",
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        metavar="URL|N",
        help="Which source, by its url or its position (1, 2...), when the manifest has several.",
    ),
    full: bool = typer.Option(
        False, "--full", help="Pull everything, even for a `delta: true` source."
    ),
) -> Message:
    """Pull one OneRoster REST source and write it as a OneRoster CSV bundle.

    The bundle (manifest.csv, orgs, academicSessions, classes, users, enrollments, and
    roles for 1.2) is what `kprov sync` reads from the source: review it, archive it, diff
    it, or replay it with `oneroster: - path: DIR`. The pull is complete or nothing, as for
    sync. A `delta: true` source is pulled from its saved cursor (tonight's changes) unless
    --full; the cursor is never moved by this command. Nothing is sent to Knewton.

    \b
    Examples:
      kprov oneroster pull semester.yaml --out /srv/sis/pulled/tonight
      kprov oneroster pull semester.yaml --source 2 --full --out full-pull
    """
    from kprov.cli.pulling import SourcePuller
    from kprov.errors import InputError
    from kprov.rosters import problems_error
    from kprov.rosters.manifest import load_manifest
    from kprov.sis.bundle import write_pulled

    g = globals_of(ctx)
    _structure, problems, refs = load_manifest(manifest_path)
    if problems:
        raise problems_error(problems, what="manifest")
    sources = [ref.api for ref in refs if ref.api is not None]
    if not sources:
        raise InputError(f"{manifest_path} has no `oneroster_api:` source to pull")
    if source is None and len(sources) > 1:
        raise InputError(
            f"{manifest_path} has {len(sources)} OneRoster sources; choose one with --source "
            "URL or --source N",
            problems=[f"{n}: {s.url}" for n, s in enumerate(sources, 1)],
        )
    chosen = sources[0]
    if source is not None:
        matching = [s for n, s in enumerate(sources, 1) if source in (str(n), s.url)]
        if not matching:
            raise InputError(f"--source {source!r} is neither a source's url nor 1-{len(sources)}")
        chosen = matching[0]
    if not out.parent.is_dir() or (out.exists() and not out.is_dir()):
        raise InputError(
            f"--out {out}: name a folder inside an existing one; nothing was pulled",
            hint="Create the parent first (kprov does not create folders a typo could name).",
        )
    puller = SourcePuller(full=full)
    puller.state_dir = lambda: g.settings().state_dir
    data = puller(chosen)
    written = write_pulled(data, out)
    lines = [*puller.summary(), f"wrote {len(written)} files into {out}; replay them with:",
             "  oneroster:", f"    - path: {out}"]  # fmt: skip
    return Message(lines, {
        "url": data.url, "delta": data.delta, "since": data.since, "counts": data.counts(),
        "requests": data.requests, "files": [str(p) for p in written],
    })  # fmt: skip
