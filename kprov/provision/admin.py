"""One-off administrative changes that are not part of a roster plan.

They record what they do the same way the executor does (``Recorder``), so a crash or a
lost answer leaves the same traces and the same warnings.
"""

from __future__ import annotations

import secrets

from kprov.api.client import KnewtonClient
from kprov.api.errors import ApiError, MalformedAnswer
from kprov.provision.plan import InstanceSpec
from kprov.provision.ports import ProvisioningApi
from kprov.provision.recorder import Recorder
from kprov.state.journal import now_iso
from kprov.state.local import LocalState
from kprov.state.mapping import MappingEntry, MappingIndex, MappingJournal
from kprov.state.registry import INSTANCE_DELETED, IdHeldElsewhere, InstanceRecord


def create_instance(
    api: ProvisioningApi, state: LocalState, spec: InstanceSpec, key: str | None
) -> tuple[str, InstanceRecord]:
    """("created" | "already_exists", its record). Without a key, one is made up, so the
    intent recorded before sending and the instance recorded after share it."""
    existing = state.registry.instance_index.find(key) if key else None
    if existing is not None:
        return "already_exists", existing
    key = key or f"instance-{secrets.token_hex(6)}"
    recorder = Recorder(state)
    recorder.record_instance_intent(key, spec)  # a crash after sending leaves a trace
    try:
        created = api.create_instance(spec)
    except ApiError as error:
        if not error.outcome_unknown:
            recorder.record_instance_abandoned(key)  # refused: nothing was created
        raise
    try:
        return "created", recorder.record_instance(key, created.id, spec)
    except IdHeldElsewhere as held:  # its intent stays open: every load warns of it
        raise MalformedAnswer(
            "the answer gives a learning instance id kprov already holds for the instance "
            f"{held.holder}; nothing was recorded",
            method="POST",
            path="/learning-instances",
        ) from None


def delete_instance(client: KnewtonClient, state: LocalState, ref: str) -> tuple[str, int]:
    """DELETE the instance; its registrations are recorded as removed (the API marks them
    invalid). Returns (its id, how many registrations it had)."""
    registry = state.registry
    record = registry.instance_index.find(ref)
    instance_id = record.instance_id if record else ref
    registrations = list(registry.registration_index.in_instance(instance_id))
    client.delete_learning_instance(instance_id)
    for registration in registrations:
        registry.record_registration_removed(registration)
    registry.record_instance(
        InstanceRecord(
            record.key if record else instance_id,
            instance_id,
            record.graph_id if record else "",
            record.name if record else "",
            created_at=now_iso(),
            status=INSTANCE_DELETED,
        )
    )
    return instance_id, len(registrations)


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
