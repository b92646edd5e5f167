"""A run's --report: written under the lock, with the context that makes it something an
administrator files (which run, profile, API, manifest, operator, classes, hold)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kprov.cli.flow import RunOptions
    from kprov.cli.run_session import RunSession
    from kprov.provision.plan import Plan
    from kprov.provision.result import RunResult
    from kprov.state.local import LocalState


def write_run_report(
    result: RunResult, options: RunOptions, run: RunSession, state: LocalState
) -> None:
    """The --report of a run, under the lock (it names the classes from local state) and
    before the run's end is recorded (a report that cannot be written is the run's exit 9)."""
    from kprov.provision.report import write_report

    if options.report is not None:
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
