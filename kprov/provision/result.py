"""What a run did: one outcome per plan item, in one type, and the words reports use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from kprov.errors import KprovError
from kprov.provision.plan import Action, Item, Plan


class Status(StrEnum):
    DONE = "done"  # sent and answered as asked, recorded durably
    ALREADY = "already"  # the server had it already (recovered account, confirmed registration)
    FAILED = "failed"  # refused, or could not be done: pending for the next run
    NOT_ATTEMPTED = "not_attempted"  # the run stopped before it was sent (or its answer came)
    HELD = "held"  # deliberately not sent (HOLD and WAIT items, items a guard withheld)


class Outcome(NamedTuple):
    item: Item
    status: Status
    detail: str = ""
    account_id: str = ""
    instance_id: str = ""
    registration_id: str = ""
    flagged: bool = False  # recorded but needs a look (e.g. registration id unknown)


_DONE_WORDS = {
    Action.CREATE_ACCOUNT: ("created", "recovered"),
    Action.CREATE_INSTANCE: ("instance_created", "instance_created"),
    Action.REGISTER: ("registered", "registered_id_unknown"),
    Action.UNREGISTER: ("removed", "removed"),
}


def _run_word(action: Action, status: Status) -> str:
    if action is Action.HOLD:
        return "held"
    if action is Action.WAIT:
        return "waiting"
    if action is Action.BLOCK or status is Status.FAILED:
        return "failed"
    if status is Status.NOT_ATTEMPTED:
        return "not_attempted"
    if status is Status.HELD:
        return "withheld"
    done, already = _DONE_WORDS[action]
    return done if status is Status.DONE else already


_RUN_WORDS = {(action, status): _run_word(action, status) for action in Action for status in Status}


def run_fate(outcome: Outcome) -> str:
    """The one word a run's report shows for an item (a table: a million items are read)."""
    if outcome.item.guard and outcome.status is Status.HELD:  # a guard's, whatever it was
        return "withheld"
    return _RUN_WORDS[outcome.item.action, outcome.status]


FAILING = frozenset({"failed", "not_attempted"})


@dataclass
class RunResult:
    """The result of applying a plan: exactly one outcome per plan item."""

    plan: Plan
    run_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    stopped_by: KprovError | None = None
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    requests_ok: int = 0  # answered 2xx
    rate_limited: int = 0
    elapsed: float = 0.0
    hold_id: str = ""  # the hold its withheld items were saved in (set once it is saved)

    def fates(self) -> list[str]:
        """Each outcome's ``run_fate``, made once per list of outcomes (a run's report, its
        summary, its ledger end and its exit code each ask: 50,000 accounts were 450,000
        calls). Remade when ``outcomes`` is replaced or grows."""
        outcomes = self.outcomes
        cached = self.__dict__.get("_fates")
        if cached is not None and cached[0] is outcomes and len(cached[1]) == len(outcomes):
            return cached[1]
        fates = list(map(run_fate, outcomes))
        self.__dict__["_fates"] = (outcomes, fates)
        return fates

    def counts(self) -> dict[str, int]:
        found: Counter[str] = Counter(self.fates())
        found.update(self.plan.counts_kept())
        found["skipped_rows"] += len(self.plan.skipped)
        return {k: v for k, v in sorted(found.items()) if v}

    def failures(self) -> list[Outcome]:
        """The outcomes that failed or were not attempted (made once per list of outcomes,
        as ``fates``: the exit code, the summary, the log and the guards each ask)."""
        fates = self.fates()
        cached = self.__dict__.get("_failures")
        if cached is not None and cached[0] is fates:
            return list(cached[1])
        found = [o for o, fate in zip(self.outcomes, fates, strict=True) if fate in FAILING]
        self.__dict__["_failures"] = (fates, found)
        return list(found)

    @property
    def withheld(self) -> int:
        """Items a guard withheld (a run saves them in a hold; exit 6)."""
        outcomes = self.outcomes
        cached = self.__dict__.get("_withheld")
        if cached is not None and cached[0] is outcomes and cached[1] == len(outcomes):
            return int(cached[2])
        count = sum(1 for o in outcomes if o.item.guard and o.status is Status.HELD)
        self.__dict__["_withheld"] = (outcomes, len(outcomes), count)
        return count
