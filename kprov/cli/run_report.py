"""What a run writes about itself: its --report, written under the lock with the context
that makes it something an administrator files (which run, profile, API, manifest,
operator, classes, hold), and its --log-file line."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from kprov.cli.run_options import RunOptions
    from kprov.cli.run_session import RunSession
    from kprov.provision.plan import Plan
    from kprov.provision.result import RunResult
    from kprov.state.local import LocalState


def write_run_report(
    result: RunResult, options: RunOptions, run: RunSession, state: LocalState
) -> None:
    """The --report of a run, under the lock (it names the classes from local state) and
    before the run's end is recorded (a report that cannot be written is the run's exit 9)."""
    if options.report is not None:
        from kprov.provision.report import write_report

        context = report_context(run, state, result.plan, applied=True)
        title = f"kprov {result.plan.command} {result.run_id}"
        write_report(options.report, result, title=title, context=context)


def report_context(run: RunSession, state: LocalState, plan: Plan, *, applied: bool) -> Any:
    from kprov.api.urls import url_origin
    from kprov.provision.holds import hold_id_of
    from kprov.provision.report import ReportContext
    from kprov.provision.run_record import class_lines
    from kprov.state.journal import now_iso

    settings = run.settings
    sources = list(run.sources)
    return ReportContext(
        run_id=run.run_id,
        date=now_iso(),
        profile=settings.profile.name if settings else "",
        api_host=url_origin(settings.profile.base_url) if settings else "",
        manifest=", ".join(sources[:1] if run.command == "sync" else sources),
        operator=f"{run.who.os_user}@{run.who.host}",
        classes=class_lines(state.registry, plan, applied=applied),
        hold=hold_id_of(run.run_id) if applied and plan.withheld else "",
    )


def append_log_line(
    run: RunSession,
    log_file: Path,
    code: int,
    error: KprovError | None,
    result: RunResult | None,
    counts: Mapping[str, int],
) -> None:
    """One JSON line per run (--log-file): when, which run, who, where, how it ended. A log
    that cannot be written is a warning: it must never hide how the run ended."""
    import json

    from kprov.cli.output import warn
    from kprov.cli.render_json import error_json
    from kprov.outside_text import printable_data
    from kprov.provision.report import create_private

    settings = run.settings
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_id": run.run_id,
        "stage": "error" if error is not None else run.mode,
        "exit_code": int(code),
        "seconds": round(time.monotonic() - run.started, 3),
        "command": run.command,
        "os_user": run.who.os_user,
        "host": run.who.host,
        "profile": settings.profile.name if settings else None,
        "base_url": settings.profile.base_url if settings else None,
        "manifest": run.sources[0] if run.command == "sync" and run.sources else None,
        "inputs": list(run.sources),
    }
    if error is not None:
        record["error"] = error_json(error)
    elif result is not None:
        record.update(_run_log(result, code))
    else:
        record["counts"] = dict(counts)
    try:
        with create_private(log_file, append=True) as handle:
            handle.write(json.dumps(printable_data(record), default=str) + "\n")
    except (KprovError, OSError) as exc:
        reason = exc.message if isinstance(exc, KprovError) else exc.strerror
        warn(f"cannot append to --log-file {log_file}: {reason}")


def _run_log(result: RunResult, code: int) -> dict[str, Any]:
    from kprov.cli.render_json import run_document
    from kprov.provision.report import report_rows
    from kprov.provision.result import FAILING

    document = run_document(result, ExitCode(code), items=False)
    rows = list(report_rows(result, every_line=False))
    document["removed"] = [r for r in rows if r["outcome"] == "removed"]  # all of them
    document["failures"] = [r for r in rows if r["outcome"] in FAILING]
    return {k: v for k, v in document.items() if k not in ("exit_code", "run_id", "command")}
