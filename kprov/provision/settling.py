"""What happens when an item of a plan settles: the executor's bookkeeping of outcomes.

An account made, a class made, an old role removed, an instructor registered: each releases
the items that waited for it, or settles them as blocked with its cause when it failed; and
every item keeps a fate, also when the run stopped before reaching it. The dispatcher
(``provision.execute.Executor``) calls these in its own thread, in order; they send nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kprov.errors import Interrupted, KprovError
from kprov.provision.plan import Action, Item
from kprov.provision.result import Outcome, Status, run_fate
from kprov.rosters.model import INSTRUCTOR


@dataclass
class Waits:
    """What items wait for, keyed by what will release them."""

    account: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    instance: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    teacher: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    removal: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))


class Settling:
    """The executor's outcomes and what waits on them (a mixin: ``Executor`` sets these
    attributes in ``run`` and releases what waited through ``_release``)."""

    items: tuple[Item, ...]
    outcomes: dict[int, Outcome]
    account_of: dict[str, str]
    instance_of: dict[str, str]
    failed_account: dict[str, Outcome]
    failed_instance: dict[str, Outcome]
    removed: set[tuple[str, str]]
    waits: Waits
    stop: KprovError | None
    teacher: dict[str, str]
    teachers_pending: dict[str, set[int]]
    _unshown: int
    _untold: list[tuple[int, Outcome]]
    _on_settle: Callable[[int, Outcome], None] | None

    def _release(self, waiting: Iterable[int]) -> None:
        raise NotImplementedError

    def _settle(self, index: int, outcome: Outcome) -> None:
        if index in self.outcomes:
            return
        self.outcomes[index] = outcome
        self._unshown += 1
        self._untold.append((index, outcome))
        if self._on_settle is not None:
            self._on_settle(index, outcome)
        item = outcome.item
        ok = outcome.status in (Status.DONE, Status.ALREADY)
        if item.action is Action.CREATE_ACCOUNT:
            if ok:
                self.account_of[item.external_id] = outcome.account_id
            else:
                self.failed_account[item.external_id] = outcome
            accounts_wait = self.waits.account.pop(item.external_id, None)
            if accounts_wait:
                self._release(accounts_wait)
        elif item.action is Action.CREATE_INSTANCE:
            if ok:
                self.instance_of[item.instance] = outcome.instance_id
            else:
                self.failed_instance[item.instance] = outcome
            self._release(self.waits.instance.pop(item.instance, ()))
        elif item.action is Action.UNREGISTER and ok:
            key = (item.account_id, item.instance_id)
            self.removed.add(key)
            self._release(self.waits.removal.pop(key, ()))
        elif item.action is Action.UNREGISTER:
            for waiting in self.waits.removal.pop((item.account_id, item.instance_id), ()):
                self._settle(waiting, blocked(self.items[waiting], outcome, "the old role"))
        elif item.action is Action.REGISTER and item.role == INSTRUCTOR:
            self._teacher_settled(index, outcome)

    def _settle_accounts(self, settled: list[tuple[int, Outcome]]) -> None:
        """``_settle`` for the outcomes of a batch, all account creations: the same
        bookkeeping without the branches of the other actions (a batch settles fifty)."""
        outcomes, untold, on_settle = self.outcomes, self._untold, self._on_settle
        account_of, failed, waits = self.account_of, self.failed_account, self.waits.account
        done, already = Status.DONE, Status.ALREADY
        for index, outcome in settled:
            if index in outcomes:
                continue
            outcomes[index] = outcome
            self._unshown += 1
            untold.append((index, outcome))
            if on_settle is not None:
                on_settle(index, outcome)
            ext = outcome.item.external_id
            if outcome.status is done or outcome.status is already:
                account_of[ext] = outcome.account_id
            else:
                failed[ext] = outcome
            if waits:  # registrations of this plan wait for some accounts
                waiting = waits.pop(ext, None)
                if waiting:
                    self._release(waiting)

    def _teacher_settled(self, index: int, outcome: Outcome) -> None:
        """An instructor registration ended: its learners go under its token if it worked,
        or under the admin's once no instructor of theirs is left to try."""
        item = outcome.item
        pending = self.teachers_pending[item.instance]
        pending.discard(index)
        instance_id = outcome.instance_id or item.instance_id or self.instance_of.get(item.instance)
        ok = outcome.status in (Status.DONE, Status.ALREADY)
        if ok and instance_id and instance_id not in self.teacher:
            self.teacher[instance_id] = item.external_id
        if (instance_id and instance_id in self.teacher) or not pending:
            self._release(self.waits.teacher.pop(item.instance, ()))

    def _settle_rest(self) -> None:
        """Every item keeps a fate, also when the run stopped before reaching it."""
        cause = self.stop
        if isinstance(cause, Interrupted):
            reason = "the run was interrupted before this was sent"
        elif cause is not None:
            reason = f"the run stopped before this was done ({cause.message})"
        else:
            reason = "not reached (a dependency was never settled)"
        for index, item in enumerate(self.items):
            if index not in self.outcomes:
                self._settle(index, Outcome(item, Status.NOT_ATTEMPTED, reason))

    def _unknown_ids(self) -> int:
        """Registrations this run saw confirmed without their id (for the notice's count)."""
        return sum(run_fate(o) == "registered_id_unknown" for o in self.outcomes.values())


def blocked(item: Item, cause: Outcome, what: str) -> Outcome:
    """*item* settled by the failure of what it needed (*what*), with that cause."""
    status = Status.NOT_ATTEMPTED if cause.status is Status.NOT_ATTEMPTED else Status.FAILED
    return Outcome(item, status, f"{what}: {cause.detail}")
