"""Account provisioning: batches of at most 50, concurrent, durable, and self-healing.

Every batch's results are written to the mapping journal (fsync'ed) before they count. A
per-item 422 for an id the mapping lacks means the account exists already (made elsewhere,
or by a run that died between sending and writing, or by the first try of a retried batch):
its id is recovered with the user's own token and recorded as ``recovered``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kprov.api.client import MAX_BATCH, KnewtonClient
from kprov.api.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    PermissionDenied,
    ServerError,
    TokenRefused,
)
from kprov.errors import KprovError
from kprov.provision.pool import Pool, StopRun
from kprov.rosters.model import Person
from kprov.state.mapping import (
    STATUS_CREATED,
    STATUS_RECOVERED,
    MappingEntry,
    MappingIndex,
    MappingJournal,
    now_iso,
)

ProgressCallback = Callable[[int], None]


class Outcome(StrEnum):
    CREATED = "created"
    ALREADY_MAPPED = "already_mapped"
    RECOVERED = "recovered"
    FAILED = "failed"
    WOULD_CREATE = "would_create"
    NOT_ATTEMPTED = "not_attempted"


@dataclass(frozen=True, slots=True)
class AccountResult:
    outcome: Outcome
    account_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class LineResult:
    """The fate of one roster line, for reports."""

    person: Person
    outcome: Outcome
    account_id: str | None
    reason: str | None


@dataclass
class ImportResult:
    by_id: dict[str, AccountResult] = field(default_factory=dict)
    batches_sent: int = 0
    stopped_by: KprovError | None = None
    elapsed: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(r.outcome.value for r in self.by_id.values())

    @property
    def failed(self) -> int:
        return sum(
            1 for r in self.by_id.values() if r.outcome in (Outcome.FAILED, Outcome.NOT_ATTEMPTED)
        )

    def lines(self, people: Sequence[Person]) -> Iterator[LineResult]:
        for person in people:
            result = self.by_id.get(person.external_id)
            if result is not None:
                yield LineResult(person, result.outcome, result.account_id, result.reason)


@dataclass(frozen=True)
class ImportOptions:
    concurrency: int = 4
    dry_run: bool = False
    batch_size: int = MAX_BATCH


def unique_people(people: Sequence[Person]) -> list[Person]:
    """First line of each external id, in roster order (a person may be in several classes)."""
    seen: set[str] = set()
    unique = []
    for person in people:
        if person.external_id not in seen:
            seen.add(person.external_id)
            unique.append(person)
    return unique


def chunked(items: Sequence[Person], size: int) -> Iterator[list[Person]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


STOPPING_ERRORS = (AuthenticationError, PermissionDenied, NetworkError, ServerError)


def recover_existing(client: KnewtonClient, external_id: str, message: str) -> AccountResult:
    """Find the account an id already has, via the user's own token (the 2-legged flow).

    Errors that mean the whole run cannot go on (auth refused, API down) propagate.
    """
    try:
        account_id = client.account_id_of(external_id)
    except TokenRefused:
        return AccountResult(Outcome.FAILED, None, f"422: {message}")
    except STOPPING_ERRORS:
        raise
    except ApiError as exc:
        return AccountResult(
            Outcome.FAILED, None, f"422: {message}; recovering its id failed: {exc}"
        )
    return AccountResult(Outcome.RECOVERED, account_id)


class AccountImporter:
    """Creates the accounts a roster needs and records every one of them durably."""

    def __init__(
        self,
        client: KnewtonClient | None,
        journal: MappingJournal,
        index: MappingIndex,
        *,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.index = index
        self._progress = progress or (lambda n: None)
        self._index_lock = threading.Lock()

    def _record(self, entries: list[MappingEntry]) -> None:
        """Durable first, then visible: a crash between the two loses nothing."""
        self.journal.append(entries)
        with self._index_lock:
            for entry in entries:
                self.index.apply(entry)

    def run(self, people: Sequence[Person], options: ImportOptions) -> ImportResult:
        started = time.monotonic()
        result = ImportResult()
        pending: list[Person] = []
        for person in unique_people(people):
            account_id = self.index.account_of.get(person.external_id)
            if account_id is not None:
                reason = "disabled" if person.external_id in self.index.disabled else None
                result.by_id[person.external_id] = AccountResult(
                    Outcome.ALREADY_MAPPED, account_id, reason
                )
            elif options.dry_run:
                result.by_id[person.external_id] = AccountResult(Outcome.WOULD_CREATE)
            else:
                pending.append(person)
        if pending:
            self._run_batches(pending, options, result)
        result.elapsed = time.monotonic() - started
        return result

    def _run_batches(
        self, pending: list[Person], options: ImportOptions, result: ImportResult
    ) -> None:
        def settle(batch: list[Person], outcomes: dict[str, AccountResult]) -> None:
            result.by_id.update(outcomes)
            result.batches_sent += 1
            self._progress(len(batch))

        def stopped(batch: list[Person], stop: StopRun) -> None:
            settle(
                batch,
                {
                    p.external_id: AccountResult(
                        Outcome.NOT_ATTEMPTED, None, f"outcome unknown ({stop.cause}); rerun"
                    )
                    for p in batch
                }
                | (stop.partial or {}),
            )

        def skipped(batch: list[Person]) -> None:
            for person in batch:
                result.by_id[person.external_id] = AccountResult(
                    Outcome.NOT_ATTEMPTED, None, "run stopped before this batch was sent"
                )

        pool: Pool[list[Person], dict[str, AccountResult]] = Pool(
            self._one_batch,
            concurrency=options.concurrency,
            on_done=settle,
            on_stopped=stopped,
            on_skipped=skipped,
            name="kprov-batch",
        )
        result.stopped_by = pool.run(chunked(pending, min(options.batch_size, MAX_BATCH)))

    def _one_batch(self, batch: list[Person]) -> dict[str, AccountResult]:
        assert self.client is not None
        sis_of = {p.external_id: p.sis_id or "" for p in batch}
        try:
            items = self.client.batch_create_accounts(p.external_id for p in batch)
        except STOPPING_ERRORS as exc:
            raise StopRun(exc) from None
        except ApiError as exc:
            return {p.external_id: AccountResult(Outcome.FAILED, None, str(exc)) for p in batch}
        outcomes: dict[str, AccountResult] = {}
        created: list[MappingEntry] = []
        duplicates: list[tuple[str, str]] = []
        stamp = now_iso()
        for item in items:
            ext = item.external_user_id
            if item.ok and item.account_id:
                created.append(
                    MappingEntry(ext, item.account_id, stamp, sis_of[ext], STATUS_CREATED)
                )
                outcomes[ext] = AccountResult(Outcome.CREATED, item.account_id)
            elif item.status in (409, 422):
                duplicates.append((ext, item.error_message or "duplicate"))
            else:
                outcomes[ext] = AccountResult(
                    Outcome.FAILED, None, f"HTTP {item.status}: {item.error_message}"
                )
        self._record(created)
        recovered: list[MappingEntry] = []
        try:
            for ext, message in duplicates:
                try:
                    outcome = recover_existing(self.client, ext, message)
                except STOPPING_ERRORS as exc:
                    raise StopRun(exc) from None
                outcomes[ext] = outcome
                if outcome.outcome is Outcome.RECOVERED and outcome.account_id:
                    recovered.append(
                        MappingEntry(
                            ext, outcome.account_id, now_iso(), sis_of[ext], STATUS_RECOVERED
                        )
                    )
        except StopRun as stop_run:
            stop_run.partial = dict(outcomes)
            raise
        finally:
            self._record(recovered)
        return outcomes


def create_single(
    client: KnewtonClient,
    journal: MappingJournal,
    index: MappingIndex,
    external_id: str,
    sis_id: str = "",
) -> AccountResult:
    """POST /accounts for one id; a duplicate is recovered, and the result recorded durably."""
    known = index.account_of.get(external_id)
    if known is not None:
        return AccountResult(Outcome.ALREADY_MAPPED, known)
    from kprov.api.errors import Unprocessable

    try:
        account = client.create_account(external_id)
    except Unprocessable as exc:
        result = recover_existing(client, external_id, exc.api_message)
        status = STATUS_RECOVERED
    else:
        result = AccountResult(Outcome.CREATED, account.id)
        status = STATUS_CREATED
    if result.account_id:
        entry = MappingEntry(external_id, result.account_id, now_iso(), sis_id, status)
        journal.append([entry])
        index.apply(entry)
    return result


def disable_account(
    client: KnewtonClient,
    journal: MappingJournal,
    index: MappingIndex,
    account_id: str,
) -> str | None:
    """DELETE the account; the mapping keeps its row, superseded by a ``disabled`` one.

    Returns the external id the mapping knew for the account, if any.
    """
    client.delete_account(account_id)
    external_id = next((e for e, a in index.account_of.items() if a == account_id), None)
    if external_id is not None:
        entry = MappingEntry(
            external_id, account_id, now_iso(), index.sis_of.get(external_id, ""), "disabled"
        )
        journal.append([entry])
        index.apply(entry)
    return external_id
