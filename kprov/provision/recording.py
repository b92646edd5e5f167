"""One run's record in the ledger, from its start to its end, and what to do when the ledger
cannot be written.

The policy (docs/history.md, "When the ledger cannot be written"): until a run's start and
first items are recorded, a ledger that refuses stops the run before anything is sent (exit
9); a later group of items refused stops what it holds from being sent (exit 9 too). A
run must not change what it cannot record, and the guards that read the ledger must not be
bypassed by a full disk. Once the items are recorded, the journals -- durable before any
result counts -- are the facts: a ledger failure then stops the *recording*, not the run,
and is reported when the run ends (exit 9 if the run was otherwise clean, else the run's own
code, which says more). A ``--plan`` sends nothing, so it is recorded when it can be and
only warns when it cannot.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from kprov.errors import KprovError, StorageError
from kprov.provision.plan import Plan
from kprov.provision.result import Outcome
from kprov.provision.run_record import instance_names, item_rows, outcome_row, outcome_rows
from kprov.state import ledger_queries as queries
from kprov.state.ledger import Extra, InputFile, Ledger, RunEnd, RunStart
from kprov.state.registry import Registry

DAY = 86_400.0
AHEAD_FIRST = 256  # items written before the first request (``begin(ahead=True)``) ...
AHEAD_MOST = 16_384  # ... then groups of 4x as many, up to this many, by the writer thread
EVERY = 1 << 62  # ``_recorded`` once every item is
FLUSH_EVERY = 2_000  # outcomes per transaction while a run goes on
FLUSH_SECONDS = 5.0  # ... or this often, so a kill -9 loses at most a few seconds of them


def credential_check_due(last_ok: float | None, now: float, hours: float) -> bool:
    """Whether a quiet night should request one token: no request has succeeded for
    *hours* (or none ever has, as far as the ledger knows); never when *hours* is 0."""
    if hours <= 0:
        return False
    return last_ok is None or now - last_ok >= hours * 3600.0


def plan_rows(plan: Plan, registry: Registry, sis_of: Mapping[str, str]) -> Any:
    """The ledger rows of every item of *plan*, named as local state names its classes."""
    return item_rows(plan, instance_names(registry, plan.items), sis_of)


class RunRecording:
    """The ledger side of one run. Its methods never raise after ``begin``; the first
    failure is kept in ``failure`` and later writes are skipped (its end is still tried)."""

    def __init__(
        self,
        start: RunStart,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.start = start
        self.ledger: Ledger | None = None
        self.failure: KprovError | None = None
        self.begun = False
        self.ended = False
        self.last_request_ok: float | None = None  # before this run: for the credential check
        self.last_clean: float | None = None  # after this run: for the metrics
        self._clock = clock
        self._monotonic = monotonic
        self._pending: list[tuple[Any, ...]] = []
        self._flushed_at = monotonic()
        # Groups written while the run goes on are written by one thread of their own, in
        # order, so the dispatcher never waits for a transaction and its fsync (a 50,000-
        # account import waited 25 times, ~20 ms each, while workers sat idle).
        self._writer: ThreadPoolExecutor | None = None
        self._writing: Future[None] | None = None
        # Items written ahead of the sender (``begin(ahead=True)``): every item whose seq is
        # below ``_recorded`` is in a committed transaction; ``_done`` once all are.
        self._recorded = 0
        self._done = True
        self._recorded_cond = threading.Condition()

    @property
    def run_id(self) -> str:
        return self.start.run_id

    # ---------------------------------------------------------------- the start

    def begin(
        self,
        state_dir: Path,
        inputs: Sequence[InputFile],
        *,
        rows: Iterable[Sequence[Any]] = (),
        required: bool = True,
        also: Extra | None = None,
        ahead: bool = False,
    ) -> None:
        """Open the ledger (under the state lock) and record, in one transaction, the run's
        start, its inputs and the item *rows* it will send or hold (``plan_rows``, in seq
        order), before the first is sent, and *also* (a hold's approval). *required*: a
        failure raises (nothing is sent yet).

        *ahead*: that transaction holds the first ``AHEAD_FIRST`` rows only, and the writer
        thread commits the others in growing groups while the run goes on; whoever sends an
        item first waits for it (``wait_recorded``: the executor does, before each request).
        Every item is still in a committed transaction before the request that carries it
        is sent, and all are before the run's end is written."""
        try:
            self.ledger = Ledger.open(state_dir)
            assert self.ledger is not None
            self.last_request_ok = queries.last_request_ok(self.ledger)
            remaining = iter(rows)
            first: Iterable[Sequence[Any]] = (
                list(islice(remaining, AHEAD_FIRST)) if ahead else remaining
            )
            self.ledger.begin_run(self.start, inputs, first, also=also)
            self.begun = True
        except KprovError as error:
            self._failed(error)
            if required:
                raise
            self._recorded = EVERY  # the caller goes on without the ledger: nothing waits
            return
        if not (ahead and isinstance(first, list) and len(first) == AHEAD_FIRST):
            self._recorded = EVERY  # every item is in that one transaction
        else:
            self._recorded, self._done = first[-1][0] + 1, False
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="kprov-ledger")
            self._writing = self._writer.submit(self._write_ahead, remaining)

    def _write_ahead(self, remaining: Iterator[Sequence[Any]]) -> None:
        """The writer thread: the rest of the items, a group a transaction (each one JSON
        statement, while the GIL is free), growing up to ``AHEAD_MOST``; each commit lets
        the requests that carry its items go."""
        size = AHEAD_FIRST * 4
        try:
            while chunk := list(islice(remaining, size)):
                assert self.ledger is not None
                self.ledger.add_items(self.run_id, chunk)
                with self._recorded_cond:
                    self._recorded = chunk[-1][0] + 1
                    self._recorded_cond.notify_all()
                size = min(size * 4, AHEAD_MOST)
            with self._recorded_cond:
                self._recorded = EVERY
        except KprovError as error:
            self._failed(error)
        except BaseException as error:  # a bug: nothing more may be sent
            self._failed(KprovError(f"internal error recording the run's items: {error!r}"))
            raise
        finally:
            with self._recorded_cond:
                self._done = True
                self._recorded_cond.notify_all()

    def wait_recorded(self, seq: int) -> None:
        """Return once item *seq* is in a committed transaction of the ledger; StorageError
        (the run stops: exit 9) when it never will be, the ledger having refused."""
        if seq < self._recorded:
            return
        with self._recorded_cond:
            while seq >= self._recorded and not self._done:
                self._recorded_cond.wait()
            if seq < self._recorded:
                return
        failure = self.failure
        raise StorageError(
            "nothing more is sent: the run ledger could not record this run's items"
            + (f" ({failure.message})" if failure is not None else ""),
            hint=(failure.hint if failure is not None else None)
            or "Check the state directory's disk and rerun: what was sent is recorded.",
        )

    def record_whole(
        self,
        state_dir: Path,
        inputs: Sequence[InputFile],
        *,
        exit_code: int,
        error: Mapping[str, Any] | None = None,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """A run recorded at its end in one transaction: a plan (it sent nothing), or a run
        refused before it began. Never raises: the failure is kept in ``failure``."""
        try:
            self.ledger = Ledger.open(state_dir)
            assert self.ledger is not None
            self.ledger.record_run(self.start, inputs, self._end(exit_code, error, counts))
            self.begun = self.ended = True
        except KprovError as failure:
            self._failed(failure)

    # ---------------------------------------------------------------- the run

    def settled(self, seq: int, outcome: Outcome) -> None:
        """An item's outcome (the executor calls this as each settles); written in groups."""
        self.settled_row(outcome_row(seq, outcome))

    def settled_many(self, settled: Sequence[tuple[int, Outcome]]) -> None:
        """``settled`` for each (seq, outcome), in order (the executor's once per pass)."""
        if not self.begun or self.failure is not None:
            return
        self._pending.extend(outcome_rows(settled))
        self._flush_due()

    def settled_row(self, row: Sequence[Any]) -> None:
        """(seq, outcome, detail, account_id, instance_id, registration_id)."""
        if not self.begun or self.failure is not None:
            return
        self._pending.append(tuple(row))
        self._flush_due()

    def _flush_due(self) -> None:
        if (
            len(self._pending) >= FLUSH_EVERY
            or self._monotonic() - self._flushed_at >= FLUSH_SECONDS
        ):
            self.flush(wait=False)

    def flush(self, *, wait: bool = True) -> None:
        """Write the outcomes not written yet, in one transaction. *wait*: return once every
        group is written (the run's end); otherwise the group is handed to the writer thread,
        behind the groups before it, and the caller goes on."""
        if not self._pending or self.failure is not None or self.ledger is None:
            self._pending.clear()
        else:
            rows, self._pending = self._pending, []
            self._flushed_at = self._monotonic()
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="kprov-ledger")
            self._writing = self._writer.submit(
                self._attempt, lambda ledger: ledger.set_outcomes(self.run_id, rows)
            )
        if wait:
            self._drain()

    def _drain(self) -> None:
        """Wait for the writer thread to write every group it was given, then let it go."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()  # _attempt never raises: a failure is kept in ``failure``
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    # ---------------------------------------------------------------- the end

    def end(
        self,
        *,
        exit_code: int,
        error: Mapping[str, Any] | None = None,
        counts: Mapping[str, int] | None = None,
        requests: int = 0,
        requests_ok: int = 0,
        rate_limited: int = 0,
        history_days: int | None = None,
        also: Extra | None = None,
    ) -> None:
        """The run's end and, in the same transaction, what the guards leave (*also*: its
        hold, fingerprints, absence counts, cursors) and the retention: runs started more
        than *history_days* before this one are forgotten."""
        self.flush()
        if not self.begun or self.ended:
            return
        self.ended = True
        end = self._end(exit_code, error, counts, requests, requests_ok, rate_limited)
        before = self.start.started_at - history_days * DAY if history_days else None
        self._attempt(
            lambda ledger: ledger.end_run(self.run_id, end, prune_before=before, also=also),
            even_after_failure=True,
        )
        self._attempt(self._read_last_clean)

    def _end(
        self,
        exit_code: int,
        error: Mapping[str, Any] | None,
        counts: Mapping[str, int] | None,
        requests: int = 0,
        requests_ok: int = 0,
        rate_limited: int = 0,
    ) -> RunEnd:
        return RunEnd(
            ended_at=self._clock(),
            exit_code=int(exit_code),
            error=json.dumps(error, default=str) if error else None,
            counts=json.dumps(dict(counts or {})),
            requests=requests,
            requests_ok=requests_ok,
            rate_limited=rate_limited,
        )

    def _read_last_clean(self, ledger: Ledger) -> None:
        self.last_clean = queries.last_clean(ledger, self.start.command)

    def close(self) -> None:
        self._drain()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None

    # ---------------------------------------------------------------- failures

    def _attempt(self, work: Callable[[Ledger], Any], *, even_after_failure: bool = False) -> None:
        """*work*, unless an earlier write failed (the run's end is still tried: a ledger
        that refused a group of items may take one row, and "unfinished" would be wrong)."""
        if self.ledger is None or (self.failure is not None and not even_after_failure):
            return
        try:
            work(self.ledger)
        except KprovError as error:
            self._failed(error)

    def _failed(self, error: KprovError) -> None:
        if self.failure is None:
            self.failure = error
        self._pending.clear()

    def warning(self) -> str | None:
        """What to say when the ledger failed: the run itself is as its exit code says."""
        if self.failure is None:
            return None
        return (
            f"the run ledger could not record run {self.run_id}: {self.failure.message}. The "
            "mapping and the journals are complete; `kprov history` will show this run as "
            "unfinished or not at all." + (f" {self.failure.hint}" if self.failure.hint else "")
        )
