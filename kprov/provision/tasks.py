"""What a worker does with one task: send it, classify the answer narrowly, record it durably.

Each function returns the outcomes it settled; an error that means the whole run cannot go
on (credentials refused, API unreachable, interrupted, local disk failing) is returned as
``stop`` with the items left unsettled, so the executor gives them their fate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from kprov.api.errors import (
    AlreadyRegistered,
    ApiError,
    AuthenticationError,
    MalformedAnswer,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RedirectRefused,
    Refusal,
    ServerError,
    ServerKeptRefusing,
    ServerWaitTooLong,
    TokenEndpointNotFound,
    TokenRefused,
)
from kprov.api.ids import UnsafeId
from kprov.errors import ConfigError, Interrupted, KprovError, StorageError
from kprov.provision.plan import Item
from kprov.provision.ports import ProvisioningApi
from kprov.provision.recorder import Recorder
from kprov.provision.result import Outcome, Status
from kprov.rosters.model import LEARNER
from kprov.state.journal import now_iso
from kprov.state.mapping import STATUS_CREATED, STATUS_RECOVERED, MappingEntry
from kprov.state.registry import IdHeldElsewhere, RegistrationRecord

RUN_STOPPERS: tuple[type[KprovError], ...] = (
    AuthenticationError,
    NetworkError,
    ServerError,
    RateLimited,
    ServerWaitTooLong,
    ServerKeptRefusing,
    TokenEndpointNotFound,
    RedirectRefused,
    Interrupted,
    StorageError,
    ConfigError,
)


class TaskResult(NamedTuple):
    settled: list[tuple[int, Outcome]]
    recover: tuple[int, ...] = ()  # CREATE_ACCOUNT items whose account exists: recover ids
    stop: KprovError | None = None
    warnings: tuple[str, ...] = ()


_new = tuple.__new__


def _stopped(error: KprovError) -> TaskResult:
    return TaskResult([], stop=error)


def create_accounts(
    api: ProvisioningApi, recorder: Recorder, items: Sequence[tuple[int, Item]]
) -> TaskResult:
    """One POST /batch. Created accounts are recorded; duplicates are handed to recovery; a
    malformed answer records nothing and hands every account of the batch to recovery."""
    try:
        answers = api.create_accounts([item.external_id for _i, item in items])
    except MalformedAnswer:
        return TaskResult([], recover=tuple(index for index, _item in items))
    except RUN_STOPPERS as error:
        return _stopped(error)
    except ApiError as error:
        return TaskResult(
            [(index, Outcome(item, Status.FAILED, str(error))) for index, item in items]
        )
    settled: list[tuple[int, Outcome]] = []
    recover: list[int] = []
    entries: list[MappingEntry] = []
    stamp = now_iso()
    pairs = list(zip(items, answers, strict=True))
    created = [
        (answer.account_id, item.external_id)
        for (_index, item), answer in pairs
        if answer.account_id and 200 <= answer.status < 300  # answer.ok, read once
    ]
    claimed = iter(recorder.claim_accounts(created))  # one lock for the batch
    done = Status.DONE
    for (index, item), answer in pairs:
        account_id = answer.account_id
        if account_id and 200 <= answer.status < 300:
            if not next(claimed):
                recover.append(index)  # an id the mapping gives someone else: never record it
                continue
            # Both tuples made without their classes' keyword-reading __new__ (fifty a
            # batch): the same fields, in their order.
            entry = (item.external_id, account_id, stamp, item.sis_id, STATUS_CREATED)
            entries.append(_new(MappingEntry, entry))
            settled.append((index, _new(Outcome, (item, done, "", account_id, "", "", False))))
        elif answer.refusal is Refusal.DUPLICATE_ACCOUNT:
            recover.append(index)  # it exists: find its id through the user's own token
        else:
            detail = f"HTTP {answer.status}: {answer.error_message or 'refused'}"
            settled.append((index, Outcome(item, Status.FAILED, detail)))
    try:
        recorder.record_accounts(entries)
    except StorageError as error:
        return _stopped(error)
    return TaskResult(settled, recover=tuple(recover))


def recover_account(api: ProvisioningApi, recorder: Recorder, index: int, item: Item) -> TaskResult:
    """The account exists (or may): find its id through the user's own token and record it."""
    try:
        account_id = api.recover_account_id(item.external_id)
    except TokenRefused as error:
        detail = (
            "no account could be confirmed for this id (the API refused its token: "
            f"{error.api_message}); it stays pending for the next run"
        )
        return TaskResult([(index, Outcome(item, Status.FAILED, detail))])
    except RUN_STOPPERS as error:
        return _stopped(error)
    except ApiError as error:
        return TaskResult([(index, Outcome(item, Status.FAILED, f"recovering its id: {error}"))])
    if not recorder.claim_account(account_id, item.external_id):
        detail = f"the API named account {account_id}, which the mapping gives another id"
        return TaskResult([(index, Outcome(item, Status.FAILED, detail))])
    entry = MappingEntry(item.external_id, account_id, now_iso(), item.sis_id, STATUS_RECOVERED)
    try:
        recorder.record_accounts([entry])
    except StorageError as error:
        return _stopped(error)
    return TaskResult([(index, Outcome(item, Status.ALREADY, "recovered", account_id=account_id))])


def create_instance(api: ProvisioningApi, recorder: Recorder, index: int, item: Item) -> TaskResult:
    assert item.spec is not None
    try:
        recorder.record_instance_intent(item.instance, item.spec)
        created = api.create_instance(item.spec)
        recorder.record_instance(item.instance, created.id, item.spec)
    except IdHeldElsewhere as held:  # the intent stays open: the rerun warns, then asks again
        detail = _ID_HELD.format("learning instance", held.holder)
        return TaskResult([(index, Outcome(item, Status.FAILED, detail))])
    except RUN_STOPPERS as error:
        # Stopped before anything was created (a 429 storm, refused credentials, Ctrl-C while
        # queued): the intent is closed, or every rerun would warn of a duplicate that cannot
        # exist. Anything that may have been applied keeps it open (fail safe).
        if not getattr(error, "outcome_unknown", True):
            try:
                recorder.record_instance_abandoned(item.instance)
            except StorageError as storage:
                return _stopped(storage)
        return _stopped(error)
    except ApiError as error:
        if not error.outcome_unknown:  # refused: nothing was created, the intent is closed
            try:
                recorder.record_instance_abandoned(item.instance)
            except StorageError as storage:
                return _stopped(storage)
        return TaskResult([(index, Outcome(item, Status.FAILED, str(error)))])
    warnings: tuple[str, ...] = ()
    if created.possible_duplicate:
        warnings = (
            f"learning instance {item.instance!r} ({created.id}) was created on a resend after "
            f"an answer was lost: an earlier attempt may have left an empty duplicate named "
            f"{item.spec.name!r} that the API cannot list; kprov uses {created.id} only",
        )
    return TaskResult(
        [(index, Outcome(item, Status.DONE, instance_id=created.id))], warnings=warnings
    )


_OTHER_TYPE = (
    "already registered as {}; to change the role, remove that registration first "
    "(kprov unregister, or kprov sync --prune)"
)
_NOT_OURS = (
    'the API answered "already registered" without a type or an id: the registration may '
    "be the one this request made (a proxy that delivers a POST twice answers so) or "
    "another's; not recorded. The rerun counts it as kprov's (id unknown: `kprov "
    "registrations unresolved`); to settle it now, adopt it with `kprov registrations "
    "resolve` and its id, or remove it on the platform"
)


_ID_HELD = (
    "the server answered a {0} id kprov already holds for another {0} ({1}); nothing was "
    "recorded, and the next run asks again"
)


def register(
    api: ProvisioningApi,
    recorder: Recorder,
    index: int,
    item: Item,
    *,
    account_id: str,
    instance_id: str,
    as_user: str | None,
) -> TaskResult:
    """POST /registrations; "already registered" counts as done only when it is kprov's own.

    It is kprov's own when the answer names the type asked for, or, when it names none, when
    this very call was a resend after a lost answer or an earlier request of kprov's for the
    same type was never answered (recorded as sent, then a crash). Otherwise it fails and stays
    pending: the registration may be someone else's, as another type.
    """
    ids = {"account_id": account_id, "instance_id": instance_id}

    def settled(status: Status, detail: str = "", **extra: object) -> TaskResult:
        return TaskResult([(index, Outcome(item, status, detail, **ids, **extra))])  # type: ignore[arg-type]

    try:
        earlier = recorder.record_registration_sent(
            account_id, instance_id, item.role, item.external_id
        )
        registration_id = api.register(
            role=item.role, account_id=account_id, instance_id=instance_id, as_user=as_user
        )
    except AlreadyRegistered as error:
        if error.registered_type and error.registered_type != item.role:
            return settled(Status.FAILED, _OTHER_TYPE.format(error.registered_type))
        said_ours = error.registered_type == item.role
        if not (said_ours or error.resent_after_unknown or earlier == item.role):
            return settled(Status.FAILED, _NOT_OURS)
        registration_id = ""  # confirmed, but the API did not say its id
    except PermissionDenied as error:
        detail = str(error)
        if item.role == LEARNER and as_user is None:
            detail += (
                "; this instance has no instructor kprov knows of: add its instructor to the "
                "roster (learners are registered with an instructor's token)"
            )
        return settled(Status.FAILED, detail)
    except RUN_STOPPERS as error:
        return _stopped(error)
    except ApiError as error:
        return settled(Status.FAILED, str(error))
    try:
        recorder.record_registration(
            account_id, instance_id, item.role, registration_id, item.external_id
        )
    except IdHeldElsewhere as held:  # unrecorded, it stays pending
        return settled(Status.FAILED, _ID_HELD.format("registration", held.holder))
    except StorageError as error:
        return _stopped(error)
    if registration_id:
        return settled(Status.DONE, registration_id=registration_id)
    detail = "the API says it was already registered; its registration id is unknown"
    return settled(Status.ALREADY, detail, flagged=True)


def unregister(api: ProvisioningApi, recorder: Recorder, index: int, item: Item) -> TaskResult:
    """DELETE /registrations/{id}; "not found" means the goal is reached."""
    status, detail = Status.DONE, ""
    try:
        api.unregister(item.registration_id)
    except NotFound:
        status, detail = Status.ALREADY, "already gone on the server"
    except RUN_STOPPERS as error:
        return _stopped(error)
    except (ApiError, UnsafeId) as error:  # UnsafeId: a stored id that is not one; nothing sent
        return TaskResult([(index, Outcome(item, Status.FAILED, str(error)))])
    record = RegistrationRecord(
        item.account_id, item.instance_id, item.role, item.registration_id, item.external_id
    )
    try:
        recorder.record_removal(record)
    except StorageError as error:
        return _stopped(error)
    return TaskResult(
        [(index, Outcome(item, status, detail, registration_id=item.registration_id))]
    )
