"""One provisioning run's edges: its id, its record in the ledger, its log line, its metrics
file and its notification. The flow (``cli.flow``) calls it at each step; it decides nothing
about the plan, and what a record holds is ``provision.run_record`` / ``provision.recording``.

A notification or a metrics file that cannot be delivered is a warning: neither ever changes
a run's exit code. The ledger's own failure policy is in ``provision.recording``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.output import warn
from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from kprov.cli.run_options import RunOptions
    from kprov.config import Settings
    from kprov.provision.plan import Plan
    from kprov.provision.recording import RunRecording
    from kprov.provision.result import RunResult
    from kprov.run_settings import RunSettings
    from kprov.state.ledger import Extra, InputFile
    from kprov.state.ledger_guards import RunGuards
    from kprov.state.rebuild import MappingRebuild


class RunSession:
    """The edges of one run, from the first line read to the exit code."""

    def __init__(
        self, command: str, options: RunOptions, *, plan_only: bool, mode: str = ""
    ) -> None:
        from kprov.cli.help import invocation
        from kprov.cli.session import new_run_id
        from kprov.provision.run_record import operator, scrub_argv

        self.run_id = new_run_id()
        self.command = command
        self.options = options
        self.mode = mode or ("plan" if plan_only else "apply")
        self.counts: dict[str, int] = {}  # outcomes of a one-off command (``done``)
        self.started = time.monotonic()
        self.started_at = time.time()
        self.argv = scrub_argv(invocation())
        self.who = operator()
        self.settings: Settings | None = None
        self.recording: RunRecording | None = None
        self.sources: Sequence[str] = ()
        self.notify = ("", "")  # what the input file says (a manifest's notify:, notify_on:)
        self.job = ""  # its command and first input (``provision.holds.job_of``)

    # ----------------------------------------------------------- the ledger record

    def begin(
        self,
        settings: Settings,
        inputs: Sequence[InputFile],
        *,
        rows: Iterable[Sequence[Any]] = (),
        parent: str = "",
        also: Extra | None = None,
        ahead: bool = False,
    ) -> None:
        """Under the state lock, before anything is sent: the run's row, its inputs and the
        *rows* of what it will change (and *also*: a hold's approval). If the ledger cannot
        take them the run stops here (exit 9, nothing sent). *ahead*: only the first rows
        now, the others while the run goes on, each before its request is sent (the
        executor waits for them: ``RunRecording.begin``)."""
        from kprov.provision.recording import RunRecording

        self.settings = settings
        self.recording = RunRecording(self._start(settings, parent))
        self.recording.begin(settings.state_dir, inputs, rows=rows, also=also, ahead=ahead)

    def record_plan(
        self, settings: Settings, inputs: Sequence[InputFile], plan: Plan, code: ExitCode
    ) -> None:
        """A plan, recorded whole (it sent nothing): a ledger that refuses is a warning."""
        from kprov.provision.recording import RunRecording

        self.settings = settings
        self.recording = RunRecording(self._start(settings))
        self.recording.record_whole(
            settings.state_dir, inputs, exit_code=int(code), counts=plan.counts()
        )

    def _start(self, settings: Settings, parent: str = "") -> Any:
        from kprov.provision.run_record import run_start

        return run_start(
            self.run_id, self.command, self.mode, started_at=self.started_at,
            profile=settings.profile.name, base_url=settings.profile.base_url,
            argv=self.argv, who=self.who, parent=parent, job=self.job,
        )  # fmt: skip

    @contextlib.contextmanager
    def recorded(self) -> Iterator[None]:
        """Under the lock: whatever stops the run is its recorded end, before the lock goes."""
        try:
            yield
        except BaseException as caught:
            rec = self.recording
            if rec is not None and rec.begun and not rec.ended:
                from kprov.cli.render_json import error_json

                error = as_error(caught)
                code = exit_of(caught, error)
                rec.end(exit_code=code, error=error_json(error) if error else None)
            raise
        finally:
            if self.recording is not None:
                self.recording.close()

    def done(self, seq: int, outcome: str, detail: str = "", **ids: str) -> None:
        """The outcome of row *seq* of a one-off command (``admin_run``)."""
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.recording is not None:
            row = (seq, outcome, detail, ids.get("account_id", ""),
                   ids.get("instance_id", ""), ids.get("registration_id", ""))  # fmt: skip
            self.recording.settled_row(row)

    def end_run(self, result: RunResult, guards: RunGuards | None = None) -> ExitCode:
        """Under the lock: the run's end with what its guards leave (*guards*: its hold,
        fingerprints, absence counts, cursors), then the retention; returns the exit code,
        which a ledger failure turns into 9 only when the run was otherwise clean. The
        hold's id is set on *result* once it is saved."""
        from kprov.cli.output import exit_code_for
        from kprov.cli.render_json import error_json
        from kprov.state.ledger_guards import write_run_guards

        rec = self.recording
        assert rec is not None and self.settings is not None
        rec.flush()
        code = exit_code_for(result=result, unrecorded=rec.failure is not None)
        error = error_json(result.stopped_by) if result.stopped_by is not None else None
        rec.end(
            exit_code=int(code), error=error, counts=result.counts(), requests=result.requests,
            requests_ok=result.requests_ok, rate_limited=result.rate_limited,
            history_days=self.settings.profile.run.history_days,
            also=write_run_guards(guards) if guards is not None else None,
        )  # fmt: skip
        if guards is not None and guards.hold is not None and rec.failure is None:
            result.hold_id = guards.hold.hold_id
        return exit_code_for(result=result, unrecorded=rec.failure is not None)

    def _warn_unrecorded(self) -> None:
        rec = self.recording
        message = rec.warning() if rec is not None else None
        if message:
            warn(message)

    # ----------------------------------------------------------- failures

    @contextlib.contextmanager
    def failures(self, settings_of: Any) -> Iterator[None]:
        """Around the whole run: an error that ends it (bad input, configuration, the lock)
        still reaches the ledger (when it can be locked), the log, the metrics and the hook."""
        try:
            yield
        except (KprovError, typer.Abort, KeyboardInterrupt) as caught:
            error = as_error(caught)
            assert error is not None
            if self.settings is None:
                with contextlib.suppress(KprovError):
                    self.settings = settings_of()
            if self.recording is None or not self.recording.begun:
                self._record_refused(error)
            self.after(int(error.exit_code), error=error)
            raise

    def _record_refused(self, error: KprovError) -> None:
        """A run that stopped before its record began: recorded whole, if its state exists
        and its lock is free (a lock held by another run is that run's to write)."""
        from kprov.cli.render_json import error_json
        from kprov.errors import LockHeldError
        from kprov.provision.recording import RunRecording
        from kprov.state.lock import StateLock

        settings = self.settings
        if settings is None or isinstance(error, LockHeldError):
            return
        if not settings.state_dir.is_dir():
            return
        lock = StateLock(settings.state_dir, timeout=0, command=f"kprov {self.command}")
        with contextlib.suppress(KprovError), lock:
            rec = RunRecording(self._start(settings))
            try:
                code, data = int(error.exit_code), error_json(error)
                rec.record_whole(settings.state_dir, (), exit_code=code, error=data)
            finally:
                rec.close()

    # ----------------------------------------------------------- after the run

    def after(
        self,
        code: int,
        *,
        error: KprovError | None = None,
        result: RunResult | None = None,
        plan: Plan | None = None,
    ) -> None:
        """The log line, the metrics file and the notification of a run that ended."""
        rec = self.recording
        if error is None or rec is None or rec.failure is not error:
            self._warn_unrecorded()  # (a run the ledger stopped says so in its error)
        counts = result.counts() if result is not None else plan.counts() if plan else {}
        self._log(code, error=error, result=result, counts=counts)
        if self.mode == "plan":
            return  # a plan is looked at, not watched: no metrics, no message
        summary = self._summary(code, error, result, counts)
        run = self._run_settings()
        metrics = self.options.metrics_file or (run.metrics_file if run else None)
        if metrics:
            _write_metrics(str(metrics), summary)
        from kprov.provision.run_summary import needs_notice, notification

        url = self.options.notify or self.notify[0] or (run.notify if run else None)
        notify_on = self.options.notify_on or self.notify[1] or (run.notify_on if run else "")
        if url and needs_notice(summary, notify_on or "failure"):
            _post(url, notification(summary))

    def _run_settings(self) -> RunSettings | None:
        if self.settings is not None:
            return self.settings.profile.run
        from kprov.run_settings import RunSettings, with_env

        try:
            return with_env(RunSettings(), os.environ)[0]
        except KprovError:
            return None

    def _summary(
        self, code: int, error: KprovError | None, result: RunResult | None,
        counts: Mapping[str, int],
    ) -> Any:  # fmt: skip
        from kprov.api.urls import url_origin
        from kprov.provision.run_record import resume_command
        from kprov.provision.run_summary import FIRST_FAILURES, RunSummary

        settings = self.settings
        stop = result.stopped_by if result is not None else error
        failures: list[str] = []
        for outcome in (result.failures() if result is not None else [])[:FIRST_FAILURES]:
            item = outcome.item
            where = f"{item.where}: " if item.origin else ""
            who = item.external_id or f"instance {item.instance}"
            target = f" in {item.instance}" if item.external_id and item.instance else ""
            failures.append(f"{where}{who}{target}: {outcome.detail or item.reason}")
        rec = self.recording
        return RunSummary(
            run_id=self.run_id, command=self.command,
            profile=settings.profile.name if settings else "",
            api_host=url_origin(settings.profile.base_url) if settings else "",
            os_user=self.who.os_user, host=self.who.host, started_at=self.started_at,
            ended_at=time.time(), exit_code=code, error=stop.message if stop else "",
            counts=counts, requests=result.requests if result else 0,
            rate_limited=result.rate_limited if result else 0, failures=failures,
            resume=resume_command(self.argv),
            last_clean=rec.last_clean if rec is not None and rec.ended else self._last_clean(),
            hold_id=result.hold_id if result is not None else "",
            guards=_trip_words(result),
        )  # fmt: skip

    def _last_clean(self) -> float | None:
        """When this command last ended with exit 0, read from the ledger, for a run whose own
        record did not end (refused before it began, the lock held by another run): its
        metrics file must still carry the last success, or the alert on it never fires."""
        if self.settings is None:
            return None
        from kprov.state.ledger import Ledger
        from kprov.state.ledger_queries import last_clean

        with contextlib.suppress(KprovError):
            ledger = Ledger.open(self.settings.state_dir, create=False, migrate=False)
            if ledger is not None:
                try:
                    return last_clean(ledger, self.command)
                finally:
                    ledger.close()
        return None

    def _log(
        self, code: int, *, error: KprovError | None, result: RunResult | None,
        counts: Mapping[str, int],
    ) -> None:  # fmt: skip
        """One JSON line per run (--log-file): when, which run, who, where, how it ended."""
        if self.options.log_file is not None:
            from kprov.cli.run_report import append_log_line

            append_log_line(self, self.options.log_file, code, error, result, counts)


@contextlib.contextmanager
def admin_run(
    command: str, settings: Settings, rows: Sequence[Sequence[Any]]
) -> Iterator[RunSession]:
    """A one-off command's run (`instances create`, `accounts disable`, ...), under the state
    lock: its rows (``provision.run_record.admin_row``) recorded before anything is sent
    (exit 9 and nothing sent when the ledger cannot take them), each outcome as it ends
    (``RunSession.done``), then its end, or the error that stopped it."""
    from kprov.cli.run_options import RunOptions

    run = RunSession(command, RunOptions(), plan_only=False, mode="admin")
    with run.recorded():
        run.begin(settings, (), rows=rows)
        assert run.recording is not None
        yield run
        run.recording.end(exit_code=0, counts=run.counts)
    run._warn_unrecorded()


def record_mapping_rebuild(settings: Settings, found: MappingRebuild) -> None:
    """A rebuilt mapping (`mapping rebuild`, `--rebuild-mapping`) is a repair of the partner's
    record: its own run in the ledger, one row per account recovered, under the state lock."""
    from kprov.provision.run_record import admin_row

    why = "rebuilt from the registry's own rows (kprov mapping rebuild)"
    rows = [
        admin_row(n, "recover_account", person=e.external_user_id, sis_id=e.sis_id,
                  account_id=e.account_id, reason=why)
        for n, e in enumerate(found.recovered)
    ]  # fmt: skip
    with admin_run("mapping rebuild", settings, rows) as run:
        for n, entry in enumerate(found.recovered):
            run.done(n, "recovered", account_id=entry.account_id)


def _trip_words(result: RunResult | None) -> list[str]:
    """Why each guard that tripped did (for the notification of a run that made a hold)."""
    if result is None or not result.withheld:
        return []
    from kprov.provision.holds import trips_of, withheld_items

    return [f"{t.guard}: {t.why}" for t in trips_of(result.plan, withheld_items(result))]


def _write_metrics(path: str, summary: Any) -> None:
    from pathlib import Path

    from kprov.provision.run_summary import metrics_text
    from kprov.state.files import replace_private

    try:
        replace_private(Path(path), metrics_text(summary), mode=0o644)
    except KprovError as error:
        warn(f"cannot write the metrics file: {error.message}")


def _post(url: str, document: Mapping[str, Any]) -> None:
    from kprov.api.webhook import post_json

    delivery = post_json(url, document)
    if not delivery.delivered:
        warn(f"the run's notification was not delivered: {delivery.problem}")


def as_error(caught: BaseException) -> KprovError | None:
    """What stopped a run, as the error the ledger records (None: a normal exit); the same
    words and code the command ends with (``output.as_kprov_error``)."""
    from kprov.cli.output import as_kprov_error

    return None if isinstance(caught, typer.Exit) else as_kprov_error(caught)


def exit_of(caught: BaseException, error: KprovError | None) -> int:
    """The exit code *caught* ends the command with (1 for a bug's traceback)."""
    if isinstance(caught, typer.Exit):
        return int(caught.exit_code)
    expected = (KprovError, typer.Abort, KeyboardInterrupt, OSError)
    if error is None or not isinstance(caught, expected):
        return 1
    return int(error.exit_code)
