"""The one flow of every provisioning command: read input, plan, then show or apply the plan.

`accounts import`, `register`, `unregister`, `sync` and `apply` differ only in how they read
their input into a planner ``Request`` (or a saved ``Plan``); planning, confirmation,
execution, rendering, reports, logs and the exit code are this module's, once.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import owner_of
from kprov.cli.output import (
    Globals,
    command_name,
    exit_code_for,
    exit_with,
    globals_of,
    is_terminal,
    make_view,
    warn,
)
from kprov.cli.render import View, run_document, show_plan, show_run
from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from kprov.config import Settings
    from kprov.provision.plan import Plan
    from kprov.provision.planner import Request
    from kprov.provision.result import RunResult
    from kprov.state.local import LocalState


FREEZE_PLAN_ITEMS = 1_000  # see execute()


@dataclass(frozen=True)
class RunOptions:
    """What the provisioning commands share; every field is an option of theirs."""

    concurrency: int = 4
    plan_only: bool = False  # --plan / --dry-run: show, send nothing
    out: Path | None = None  # --out PLAN.json, with --plan
    detailed_exitcode: bool = False
    report: Path | None = None
    log_file: Path | None = None
    lock_timeout: float = 0.0
    test_accounts: bool = False
    yes: bool = False
    mapping: str | None = None
    rebuild_mapping: bool = False  # --rebuild-mapping: recover a lost mapping from the registry
    ask_before_removing: bool = False  # ask on a terminal when the plan removes (sync --prune)
    must_confirm_removals: bool = False  # refuse without a terminal unless --yes (unregister)
    cron_quiet: bool = False  # print nothing when all is well and nobody watches (sync)
    progress: bool = False  # a progress bar (set from the view: a terminal, not --quiet/--json)
    # run under the state lock once a run (not a plan) ended with exit 0 (sync: delta
    # cursors); returns warnings
    after_success: Callable[[], list[str]] | None = None


def check_outputs(options: RunOptions) -> None:
    """Refuse unusable output options before any work is done."""
    from kprov.errors import InputError
    from kprov.provision.report import check_report_path

    if options.report is not None:
        check_report_path(options.report)
    for option, path in (("--report", options.report), ("--out", options.out),
                         ("--log-file", options.log_file)):  # fmt: skip
        if path is not None and not path.parent.is_dir():
            raise InputError(
                f"{option} {path}: the folder {path.parent} does not exist; nothing was sent",
                hint="Create it first (kprov does not create folders a typo could name).",
            )
    if options.out is not None and not options.plan_only:
        raise InputError("--out saves a plan: use it with --plan (then `kprov apply FILE`)")
    if options.detailed_exitcode and not options.plan_only:
        raise InputError("--detailed-exitcode describes a plan: use it with --plan")


def provision(
    ctx: typer.Context, make_request: Callable[[Globals], Request], options: RunOptions
) -> None:
    """Plan the request against local state; show the plan, or apply it."""
    from kprov.cli.session import new_run_id
    from kprov.provision.planner import build_plan
    from kprov.rosters import gc_paused

    g = globals_of(ctx)
    view = make_view(g, cron_quiet=options.cron_quiet)
    options = replace(options, progress=_progress_wanted(view))
    check_outputs(options)
    run_id = new_run_id()
    started = time.monotonic()
    with _logged_errors(options, run_id, command_name(ctx), started):
        request = make_request(g)  # bad input is reported before any configuration problem
        settings = g.settings(options.mapping)
        owner = {**owner_of(settings), **({"ids": request.ids} if request.ids else {})}
        with _local_state(settings, options, owner) as state:
            with gc_paused():  # a plan makes millions of tuples and no cycle to collect
                planned = build_plan(request, state.mapping, state.registry)
            plan = _stamped(planned, settings, state, fingerprint=options.out is not None)
            if options.plan_only:
                _finish_plan(plan, view, options, run_id, started)
                return
            _confirm_removals(plan, options)
            result = execute(plan, settings, state, options, run_id)
            if options.after_success is not None and exit_code_for(result=result) is ExitCode.OK:
                for warning in options.after_success():
                    warn(warning)
    _finish_run(result, view, options, started)


def apply_saved(ctx: typer.Context, path: Path, options: RunOptions) -> None:
    """Apply a saved plan exactly, or refuse (exit 8) when local state moved on."""
    from kprov.cli.session import new_run_id
    from kprov.provision.saved_plan import check_same_target, check_still_applies, load_plan

    g = globals_of(ctx)
    view = make_view(g, cron_quiet=options.cron_quiet)
    options = replace(options, progress=_progress_wanted(view))
    check_outputs(options)
    run_id = new_run_id()
    started = time.monotonic()
    with _logged_errors(options, run_id, "apply", started):
        plan = load_plan(path)
        settings = g.settings(options.mapping)
        check_same_target(plan, settings.profile.name, settings.profile.base_url)
        with _local_state(settings, options, owner_of(settings)) as state:
            check_still_applies(plan, state, settings.profile.name, settings.profile.base_url)
            result = execute(plan, settings, state, options, run_id)
    _finish_run(result, view, options, started)


def _progress_wanted(view: View) -> bool:
    return is_terminal(sys.stderr) and not (view.quiet or view.json)


def _stamped(plan: Plan, settings: Settings, state: LocalState, *, fingerprint: bool) -> Plan:
    from kprov.provision.saved_plan import state_fingerprint
    from kprov.state.journal import now_iso

    return replace(
        plan,
        profile=settings.profile.name,
        base_url=settings.profile.base_url,
        created_at=now_iso(),
        fingerprint=state_fingerprint(state) if fingerprint else "",
    )


@contextlib.contextmanager
def _local_state(
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
        yield state


def _confirm_removals(plan: Plan, options: RunOptions) -> None:
    from kprov.cli.common import confirm_or_refuse
    from kprov.provision.plan import Action

    removals = [] if plan.removals_withheld else [
        i for i in plan.items if i.action is Action.UNREGISTER
    ]  # fmt: skip
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
    if options.must_confirm_removals:
        confirm_or_refuse(question, yes=options.yes)
    elif options.ask_before_removing and is_terminal(sys.stdin):
        from kprov.outside_text import printable

        typer.confirm(printable(question, keep="\n"), abort=True)  # it quotes roster ids


def execute(
    plan: Plan, settings: Settings, state: LocalState, options: RunOptions, run_id: str
) -> RunResult:
    """Apply *plan*; the API client is built only when something must be sent."""
    from kprov.cli.progress import Progress
    from kprov.cli.session import build_client
    from kprov.provision.execute import Executor
    from kprov.provision.ports import ClientApi, OfflineApi

    if not plan.has_changes:
        return Executor(OfflineApi(), state, run_id=run_id).run(plan)
    if len(plan.items) >= FREEZE_PLAN_ITEMS:
        import gc

        # The plan, the rosters and the loaded state live until the command ends: the cyclic
        # collector would walk all of them again at each full collection while the run makes
        # its results (a third of the CPU of a 50,000-account import). Frozen, they are not.
        gc.freeze()
    client = build_client(
        settings,
        pool_size=options.concurrency,
        run_id=run_id,
        test_accounts=options.test_accounts,
    )
    bar = Progress(plan.command, len(plan.items), enabled=options.progress)
    with client, interruptible(client.cancel), bar as progress:
        client.transport.on_wait = progress.waiting  # a server's Retry-After, a backoff
        executor = Executor(
            ClientApi(client),
            state,
            concurrency=options.concurrency,
            run_id=run_id,
            progress=progress.advance,
            on_wait=progress.waiting,  # a quota window
        )
        return executor.run(plan)


@contextlib.contextmanager
def interruptible(cancel: threading.Event) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM, or SIGHUP): send nothing new, let what is in flight finish and
    be recorded. Second: abandon what is in flight at once (the rerun recovers it, as after a
    kill -9: every answer already received is durable).

    SIGHUP is what a closed ssh session sends: it ended the run with exit 129, no message and
    no log line. Now it stops the run like SIGTERM (exit 130, the --log-file line written);
    the terminal is gone, so what would have been printed on it goes to /dev/null instead of
    failing. A SIGHUP that is ignored (``nohup kprov ...``) stays ignored: that was asked for.
    """
    presses = 0
    terminals = [fd for fd in (1, 2) if _is_tty(fd)]  # looked at now: after a hang-up, they fail

    def handler(signum: int, _frame: Any) -> None:
        nonlocal presses
        presses += 1
        hung_up = signum == getattr(signal, "SIGHUP", None)
        if hung_up:
            _detach(terminals)
        if presses == 1:
            cancel.set()
            cause = "the terminal hung up (SIGHUP)" if hung_up else "stopping"
            _say(
                f"\nkprov: {cause}: no new request will be sent; waiting for those in flight "
                "(press Ctrl-C again to abandon them)\n"
            )
            return
        _say("\nkprov: abandoned the requests in flight; the rerun recovers them\n")
        os._exit(int(ExitCode.INTERRUPTED))

    previous: dict[signal.Signals, Any] = {}
    wanted = [signal.SIGINT, signal.SIGTERM]
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    if sighup is not None and signal.getsignal(sighup) is not signal.SIG_IGN:
        wanted.append(sighup)
    for signum in wanted:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _is_tty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _detach(fds: list[int]) -> None:
    """Point the (hung-up) terminal's descriptors at /dev/null, so the summary and the error
    written after a hang-up cannot fail the run (EIO) before its log line is written."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()


def _finish_plan(plan: Plan, view: View, options: RunOptions, run_id: str, started: float) -> None:
    from kprov.provision.report import write_report
    from kprov.provision.saved_plan import save_plan

    code = exit_code_for(plan=plan, detailed=options.detailed_exitcode)
    if options.out is not None:
        save_plan(plan, options.out)
    if options.report is not None:
        write_report(options.report, plan, title=f"kprov plan: {plan.command}")
    show_plan(plan, view, run_id=run_id, code=code)
    _log(options.log_file, run_id, "plan", code, {"counts": plan.counts()}, started)
    if options.out is not None and not view.json and not view.quiet:
        again = f"kprov --profile {shlex.quote(plan.profile)} apply {shlex.quote(str(options.out))}"
        sys.stderr.write(f"kprov: plan saved to {options.out}; apply it with `{again}`\n")
    exit_with(code)


def _finish_run(result: RunResult, view: View, options: RunOptions, started: float) -> None:
    from kprov.provision.report import write_report

    code = exit_code_for(result=result)
    if options.report is not None:
        write_report(options.report, result, title=f"kprov {result.plan.command} {result.run_id}")
    show_run(result, view, code=code)
    if options.log_file is not None:
        from kprov.provision.report import report_rows
        from kprov.provision.result import FAILING

        document = run_document(result, code, items=False)
        rows = list(report_rows(result, every_line=False))
        document["removed"] = [r for r in rows if r["outcome"] == "removed"]  # all of them
        document["failures"] = [r for r in rows if r["outcome"] in FAILING]
        _log(options.log_file, result.run_id, "apply", code, document, started)
    exit_with(code)


@contextlib.contextmanager
def _logged_errors(
    options: RunOptions, run_id: str, command: str, started: float
) -> Iterator[None]:
    try:
        yield
    except KprovError as error:
        from kprov.cli.render import error_json

        data = {"command": command, "error": error_json(error)}
        _log(options.log_file, run_id, "error", error.exit_code, data, started)
        raise


def _log(
    log_file: Path | None, run_id: str, stage: str, code: int, data: dict[str, Any], started: float
) -> None:
    """One JSON line per run, appended: when, which run, how it ended, what it did."""
    if log_file is None:
        return
    import json

    from kprov.outside_text import printable_data
    from kprov.provision.report import create_private

    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_id": run_id,
        "stage": stage,
        "exit_code": int(code),
        "seconds": round(time.monotonic() - started, 3),
        **{k: v for k, v in data.items() if k not in ("exit_code", "run_id")},
    }
    try:
        with create_private(log_file, append=True) as handle:
            handle.write(json.dumps(printable_data(record), default=str) + "\n")
    except (KprovError, OSError) as exc:  # the log must never hide how the run ended
        reason = exc.message if isinstance(exc, KprovError) else exc.strerror
        sys.stderr.write(f"kprov: warning: cannot append to --log-file {log_file}: {reason}\n")
