"""Durable first, then visible: the one way a result becomes local state.

Every result goes to its journal (written and fsync'ed; concurrent appends share one fsync)
before the in-memory indexes show it and before the executor counts it or releases the work
that depends on it. A crash in between loses nothing: the rerun finds the work on the server
and reconciles (duplicate account -> recovered, "already registered" -> confirmed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from kprov.provision.plan import InstanceSpec
from kprov.state.journal import now_iso
from kprov.state.local import LocalState
from kprov.state.mapping import MappingEntry
from kprov.state.registry import InstanceRecord, RegistrationRecord


class Recorder:
    def __init__(self, state: LocalState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._claimed: dict[str, str] = {}  # account id -> external id, claimed in this run

    def claim_account(self, account_id: str, external_id: str) -> bool:
        """Claim *account_id* for *external_id*, or say no when the mapping (or another answer
        of this run) gives it to someone else: a wrong answer must never be recorded. Checked
        and claimed in one step, ids compared as UUIDs (case does not matter)."""
        return self.claim_accounts([(account_id, external_id)])[0]

    def claim_accounts(self, claims: Sequence[tuple[str, str]]) -> list[bool]:
        """``claim_account`` for each (account id, external id) of a batch, under one lock.
        The mapping says who holds an account already (its reverse index, made once)."""
        owner_of = self.state.mapping.account_of.owner_of
        results = []
        with self._lock:
            claimed = self._claimed
            for account_id, external_id in claims:
                key = account_id.lower()
                owner = claimed.get(key)
                if owner is None:
                    owner = claimed[key] = owner_of(key) or external_id
                results.append(owner == external_id)
        return results

    def record_accounts(self, entries: list[MappingEntry]) -> None:
        if not entries:
            return
        self.state.journal.append(entries)
        with self._lock:
            self.state.mapping.apply_all(entries)

    def record_instance_intent(self, key: str, spec: InstanceSpec) -> None:
        """Before a create is sent: after a crash the rerun warns of a possible duplicate."""
        self.state.registry.record_instance_intent(
            key, spec.graph_id, spec.name, spec.start_date, spec.end_date
        )

    def record_instance_abandoned(self, key: str) -> None:
        """The server refused the create: nothing was made, the intent is closed."""
        self.state.registry.record_instance_abandoned(key)

    def record_instance(self, key: str, instance_id: str, spec: InstanceSpec) -> InstanceRecord:
        record = InstanceRecord(
            key, instance_id, spec.graph_id, spec.name, spec.start_date, spec.end_date, now_iso()
        )
        self.state.registry.record_instance(record)
        return record

    def record_registration_sent(
        self, account_id: str, instance_id: str, role: str, external_id: str
    ) -> str | None:
        """Before a registration is sent; returns the type an earlier, unanswered request of
        kprov's asked for this account and instance (a crash, a lost answer), if any."""
        record = RegistrationRecord(account_id, instance_id, role, "", external_id)
        return self.state.registry.record_registration_sent(record)

    def record_registration(
        self, account_id: str, instance_id: str, role: str, registration_id: str, external_id: str
    ) -> None:
        record = RegistrationRecord(
            account_id, instance_id, role, registration_id, external_id, now_iso()
        )
        self.state.registry.record_registration(record)

    def record_removal(self, record: RegistrationRecord) -> None:
        self.state.registry.record_registration_removed(record)

    def unresolved_notice(self, this_run: Callable[[], int] = lambda: 0) -> list[str]:
        """Registrations confirmed without an id that nobody has been told about yet: said
        once (then noted), so a nightly run does not mail the same thing for ever. *this_run*:
        how many this run confirmed so (a run killed before its notice leaves the rest to the
        next, whose own count is then smaller than the notice's: it says how many)."""
        registry = self.state.registry
        untold = registry.registration_index.unresolved(include_noted=False)
        if not untold:
            return []
        earlier = len(untold) - this_run()
        before = f" ({earlier} of them recorded before this run)" if earlier > 0 else ""
        names = {r.instance_id: r.key for r in registry.instance_index.by_key.values()}
        shown = ", ".join(
            f"{r.external_user_id} ({r.type}) in {names.get(r.instance_id, r.instance_id)}"
            for r in untold[:20]
        )
        more = f" and {len(untold) - 20} more" if len(untold) > 20 else ""
        registry.note_unresolved(untold)
        return [
            f"{len(untold)} registration(s) were confirmed by the API without their id{before}, "
            f"so kprov can never remove them: {shown}{more}. Find each id and run `kprov "
            "registrations resolve`, or `kprov registrations forget` them (`kprov registrations "
            "unresolved` lists them); this is said once."
        ]
