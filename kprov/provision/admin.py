"""One-off administrative changes that are not part of a roster plan."""

from __future__ import annotations

from kprov.api.client import KnewtonClient
from kprov.state.mapping import MappingEntry, MappingIndex, MappingJournal, now_iso


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
