"""The one flow of every provisioning command: read input, plan, then show or apply the plan.

`accounts import`, `register`, `unregister`, `sync` and `apply` differ only in how they read
their input into a planner ``Request`` (or a saved ``Plan``); planning, confirmation,
execution, rendering, reports and the exit code are this module's, once; the run's record in
the ledger, its log line, metrics and notification are its ``RunSession``'s
(``cli.run_session``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kprov.cli.common import owner_of
from kprov.cli.output import (
    Globals,
    command_name,
    exit_code_for,
    exit_with,
    globals_of,
    make_view,
    warn,
)
from kprov.cli.render import View, show_plan, show_run
from kprov.cli.run_options import RunOptions
from kprov.cli.run_report import report_context, write_run_report
from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from kprov.cli.environment import Environment
    from kprov.cli.run_session import RunSession
    from kprov.config import Settings
    from kprov.provision.plan import Plan
    from kprov.provision.request import Request
    from kprov.provision.result import RunResult
    from kprov.state.local import LocalState


FREEZE_PLAN_ITEMS = 1_000  # see execute()


def provision(
    ctx: typer.Context, make_request: Callable[[Globals], Request], options: RunOptions
) -> None:
    """Plan the request against local state; show the plan, or apply it. Every run, shown
    or applied, is recorded in the ledger (docs/history.md)."""
    from kprov.cli.guarded import end_guards, read_history, with_guard_settings
    from kprov.cli.run_session import RunSession
    from kprov.gc_pause import gc_paused
    from kprov.provision.holds import job_of
    from kprov.provision.planner import build_plan
    from kprov.provision.recording import plan_rows
    from kprov.provision.run_record import input_files

    g = globals_of(ctx)
    view = make_view(g, cron_quiet=options.cron_quiet)
    options = replace(options, progress=progress_wanted(view))
    run = RunSession(command_name(ctx), options, plan_only=options.plan_only)
    with run.failures(lambda: g.settings(options.mapping)):
        request = make_request(g)  # bad input is reported before any configuration problem
        run.sources, run.notify = request.sources, (request.notify, request.notify_on)
        run.job = job_of(request.command, request.sources)
        settings = run.settings = g.settings(options.mapping)
        request = with_guard_settings(request, settings.profile.run)
        owner = {**owner_of(settings), **({"ids": request.ids} if request.ids else {})}
        first = "manifest" if request.command == "sync" else "roster"
        with local_state(settings, options, owner) as state, run.recorded():
            inputs = input_files(request.sources, first=first)
            history = read_history(
                settings,
                request,
                plan_only=options.plan_only and options.out is None,
                job=run.job,
            )  # a plan saved to apply later must have been judged with its history
            with gc_paused():  # a plan makes millions of tuples and no cycle to collect
                plan = build_plan(request, state.mapping, state.registry, history)
            plan = _stamped(plan, settings, state, run.run_id, fingerprint=options.out is not None)
            if options.plan_only:
                code = _finish_plan(plan, view, options, run, state)
                run.record_plan(settings, inputs, plan, code)
            else:
                _confirm_removals(plan, options, view.env)
                rows = plan_rows(plan, state.registry, state.mapping.sis_of)
                run.begin(settings, inputs, rows=rows, ahead=True)
                result = execute(plan, settings, state, options, run, view.env)
                write_run_report(result, options, run, state)
                guards = end_guards(run, plan, result, state, cursors=options.cursors)
                code = run.end_run(result, guards)
    if options.plan_only:
        run.after(int(code), plan=plan)
        exit_with(code)
        return
    finish_run(result, view, code, run)


def apply_saved(ctx: typer.Context, path: Path, options: RunOptions) -> None:
    """Apply a saved plan exactly, or refuse (exit 8) when local state moved on."""
    from kprov.cli.guarded import end_guards
    from kprov.cli.run_session import RunSession
    from kprov.provision.holds import job_of
    from kprov.provision.recording import plan_rows
    from kprov.provision.run_record import input_files
    from kprov.provision.saved_plan import check_same_target, check_still_applies, load_plan
    from kprov.state.ledger import InputFile

    g = globals_of(ctx)
    view = make_view(g, cron_quiet=options.cron_quiet)
    options = replace(options, progress=progress_wanted(view))
    run = RunSession("apply", options, plan_only=False)
    with run.failures(lambda: g.settings(options.mapping)):
        plan = load_plan(path)
        run.sources = (str(path), *plan.sources)
        run.job = job_of(plan.command, plan.sources)
        settings = run.settings = g.settings(options.mapping)
        check_same_target(plan, settings.profile.name, settings.profile.base_url)
        with local_state(settings, options, owner_of(settings)) as state, run.recorded():
            inputs = [*input_files([str(path)], first="plan"),
                      *(InputFile(s, "planned from") for s in plan.sources)]  # fmt: skip
            check_still_applies(plan, state, settings.profile.name, settings.profile.base_url)
            rows = plan_rows(plan, state.registry, state.mapping.sis_of)
            run.begin(settings, inputs, rows=rows, parent=plan.planned_in, ahead=True)
            result = execute(plan, settings, state, options, run, view.env)
            write_run_report(result, options, run, state)
            code = run.end_run(result, end_guards(run, plan, result, state))
    finish_run(result, view, code, run)


def progress_wanted(view: View) -> bool:
    return view.env.stderr_isatty and view.remarks


def _stamped(
    plan: Plan, settings: Settings, state: LocalState, run_id: str, *, fingerprint: bool
) -> Plan:
    from kprov.provision.saved_plan import state_fingerprint
    from kprov.state.journal import now_iso

    return replace(
        plan,
        profile=settings.profile.name,
        base_url=settings.profile.base_url,
        created_at=now_iso(),
        fingerprint=state_fingerprint(state) if fingerprint else "",
        planned_in=run_id,
    )


@contextlib.contextmanager
def local_state(
    settings: Settings, options: RunOptions, owner: dict[str, str]
) -> Iterator[LocalState]:
    """The profile's state under its lock, if it is *owner*'s; what loading had to mend is
    said first."""
    from kprov.cli.common import command_line
    from kprov.state.local import open_local_state

    with open_local_state(
        settings.state_dir,
        settings.mapping_path,
        lock_timeout=options.lock_timeout,
        command=command_line(),
        owner=owner,
        rebuild_mapping=options.rebuild_mapping,
    ) as state:
        for warning in state.warnings:
            warn(warning)
        if state.rebuilt is not None and state.rebuilt.recovered:
            from kprov.cli.run_session import record_mapping_rebuild

            record_mapping_rebuild(settings, state.rebuilt)
        yield state


def _confirm_removals(plan: Plan, options: RunOptions, env: Environment) -> None:
    """Removals discard analytics: `unregister` asks, and refuses without a terminal unless
    --yes; `sync --prune` asks on a terminal only (cron runs unattended by design)."""
    from kprov.cli.output import confirm
    from kprov.provision.plan import Action

    removals = [i for i in plan.items if i.action is Action.UNREGISTER and not i.guard]
    if not removals or options.yes:
        return
    shown = [f"  {i.role or 'registration'} {i.external_id} in {i.instance}" for i in removals[:20]]
    if len(removals) > 20:
        shown.append(f"  ... and {len(removals) - 20} more (`--plan` lists them all)")
    question = "\n".join(
        [
            f"{len(removals)} registration(s) would be removed; their goal analytics in "
            "those instances are discarded:",
            *shown,
            "Remove them?",
        ]
    )
    if options.must_confirm_removals or (options.ask_before_removing and env.stdin_isatty):
        confirm(question, env, yes=options.yes)


def execute(
    plan: Plan,
    settings: Settings,
    state: LocalState,
    options: RunOptions,
    run: RunSession,
    env: Environment,
) -> RunResult:
    """Apply *plan*; the API client is built only when something must be sent (or, on a
    quiet night, to check the credential once: ``_check_credential``)."""
    from kprov.cli.interrupts import interruptible
    from kprov.cli.progress import Progress
    from kprov.cli.session import build_client
    from kprov.gc_pause import gc_lenient
    from kprov.provision.execute import Executor
    from kprov.provision.ports import ClientApi, OfflineApi

    settle = run.recording.settled_many if run.recording is not None else None
    if not plan.has_changes:
        result = Executor(OfflineApi(), state, run_id=run.run_id, on_settled=settle).run(plan)
        _check_credential(result, settings, run)
        return result
    if len(plan.items) >= FREEZE_PLAN_ITEMS:
        from kprov.gc_pause import freeze_for_this_command

        # The plan, the rosters and the loaded state live until the command ends: the cyclic
        # collector would walk all of them again at each full collection while the run makes
        # its results (a third of the CPU of a 50,000-account import). Frozen, they are not.
        freeze_for_this_command()
    client = build_client(
        settings,
        pool_size=options.concurrency,
        run_id=run.run_id,
        test_accounts=options.test_accounts,
    )
    bar = Progress(plan.command, len(plan.items), enabled=options.progress, env=env)
    with (
        client,
        interruptible(client.cancel, env.terminal_fds),
        bar as progress,
        gc_lenient(),
    ):
        client.transport.on_wait = progress.waiting  # a server's Retry-After, a backoff
        executor = Executor(
            ClientApi(client),
            state,
            concurrency=options.concurrency,
            run_id=run.run_id,
            progress=progress.advance,
            on_settled=settle,
            before_send=run.recording.wait_recorded if run.recording is not None else None,
            on_wait=progress.waiting,  # a quota window
        )
        return executor.run(plan)


def _check_credential(result: RunResult, settings: Settings, run: RunSession) -> None:
    """A quiet `sync` with no successful request for `auth_check_hours`: one admin token, so
    a revoked or rotated secret fails tonight (exit 3), not on the first night with work."""
    from kprov.cli.session import build_client
    from kprov.provision.recording import credential_check_due

    last = run.recording.last_request_ok if run.recording is not None else None
    hours = settings.profile.run.auth_check_hours
    if result.plan.command != "sync" or not credential_check_due(last, time.time(), hours):
        return
    try:
        with build_client(settings, pool_size=1, run_id=run.run_id, interactive=True) as client:
            try:
                client.token_for(None)
            finally:
                result.requests += client.request_count
                result.requests_ok += client.answered_ok
    except KprovError as error:
        result.stopped_by = error
        ago = "ever" if last is None else f"for {(time.time() - last) / 3600:.0f} h"
        result.warnings.append(
            f"nothing needed sending, so kprov checked the credential with one token request "
            f"(no request had succeeded {ago}; auth_check_hours is {hours:g}), and it failed"
        )


def _finish_plan(
    plan: Plan, view: View, options: RunOptions, run: RunSession, state: LocalState
) -> ExitCode:
    from kprov.provision.report import write_report
    from kprov.provision.saved_plan import save_plan

    code = exit_code_for(plan=plan, detailed=options.detailed_exitcode)
    if options.out is not None:
        save_plan(plan, options.out)
    if options.report is not None:
        context = report_context(run, state, plan, applied=False)
        write_report(options.report, plan, title=f"kprov plan: {plan.command}", context=context)
    show_plan(plan, view, run_id=run.run_id, code=code, saved_to=options.out)
    return code


def finish_run(result: RunResult, view: View, code: ExitCode, run: RunSession) -> None:
    show_run(result, view, code=code)
    run.after(int(code), result=result)
    exit_with(code)
