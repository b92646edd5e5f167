"""The plan: what one command will send, item by item, each with its origin and its reason.

A ``Plan`` is computed once, purely, from what the rosters ask for and what local state
records (``provision.planner``). Everything downstream reads this one object: the human and
JSON views of ``--plan``, saved plans (``--out`` / ``kprov apply``), the removal brake, the
reports, and the executor, which sends exactly its items and nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from kprov.rosters.model import Origin, Person, Skipped


class Action(StrEnum):
    """What the executor does with an item (the last three send nothing)."""

    CREATE_ACCOUNT = "create_account"
    CREATE_INSTANCE = "create_instance"
    REGISTER = "register"
    UNREGISTER = "unregister"
    HOLD = "hold"  # deliberately not done: needs a flag (--prune) or a human; not a failure
    BLOCK = "block"  # cannot be done as asked: a failure of this line (exit 1), nothing sent


SENDING = frozenset(
    {Action.CREATE_ACCOUNT, Action.CREATE_INSTANCE, Action.REGISTER, Action.UNREGISTER}
)


class InstanceSpec(NamedTuple):
    """How to create a learning instance kprov does not know yet."""

    graph_id: str
    name: str
    start_date: str = ""
    end_date: str = ""


class Item(NamedTuple):
    """One thing the plan does (or deliberately does not do), and why.

    A NamedTuple, not a dataclass: a million-line roster makes a million of them.
    ``instance`` is the operator's name for the instance (key, or API id);
    ``instance_id``/``account_id`` are filled when local state knows them at plan time,
    empty when an earlier item of the same plan creates them.
    """

    action: Action
    external_id: str = ""
    role: str = ""
    instance: str = ""
    instance_id: str = ""
    account_id: str = ""
    registration_id: str = ""  # UNREGISTER: the registration to delete
    sis_id: str = ""
    origin: Origin | None = None
    reason: str = ""
    spec: InstanceSpec | None = None  # CREATE_INSTANCE
    role_change: bool = False  # UNREGISTER of an old role, or REGISTER of the new one

    @property
    def where(self) -> str:
        return str(self.origin) if self.origin else ""


@dataclass(frozen=True)
class Brake:
    """The removal limit, judged on the plan: past it, no removal is sent (exit 6)."""

    removals: int
    limit: int
    managed: int  # registrations in the instances the plan may prune
    spec: str  # as given: "10%", "12"

    @property
    def engaged(self) -> bool:
        return self.removals > self.limit


@dataclass(frozen=True)
class Plan:
    """Everything one command will do, frozen. Build it with ``provision.planner``."""

    command: str  # "accounts import", "register", "unregister", "sync"
    items: tuple[Item, ...]
    # Lines already as asked, by what "as asked" means ("already_mapped", ...): the people
    # themselves, so a million kept lines cost 8 MB of references, not a million items (a
    # loaded plan reads them back lazily: ``provision.kept_lines``).
    kept: Mapping[str, Sequence[Person]] = field(default_factory=dict)
    skipped: tuple[Skipped, ...] = ()  # rows the readers deliberately left out, with why
    brake: Brake | None = None
    prune: bool = False
    warnings: tuple[str, ...] = ()
    fingerprint: str = ""  # of the local state the plan was made from (saved plans)
    profile: str = ""
    base_url: str = ""
    created_at: str = ""
    sources: tuple[str, ...] = ()  # the roster/manifest files the plan was made from
    default_instance: str = ""  # --instance: the instance of lines that name none

    @property
    def removals_withheld(self) -> bool:
        """The brake is engaged: UNREGISTER items (and the role changes that need them) stay
        unsent, everything else goes."""
        return self.brake is not None and self.brake.engaged

    @property
    def has_changes(self) -> bool:
        return any(i.action in SENDING for i in self.items)

    def counts_kept(self) -> dict[str, int]:
        """Lines already as asked, per reason."""
        return {reason: len(people) for reason, people in self.kept.items() if people}

    def counts(self) -> dict[str, int]:
        """Items per plan outcome ("would_create", "already_mapped", ...), for every view."""
        found: Counter[str] = Counter(plan_fate(i, self) for i in self.items)
        found.update(self.counts_kept())
        found["skipped_rows"] += len(self.skipped)
        return {k: v for k, v in sorted(found.items()) if v}


def plan_fate(item: Item, plan: Plan | None = None) -> str:
    """The one word a plan shows for an item (a run's words are in ``provision.result``)."""
    if (item.action is Action.UNREGISTER or item.role_change) and (
        plan is not None and plan.removals_withheld
    ):
        return "withheld"
    return _PLAN_WORDS[item.action]


_PLAN_WORDS = {
    Action.CREATE_ACCOUNT: "would_create",
    Action.CREATE_INSTANCE: "would_create_instance",
    Action.REGISTER: "would_register",
    Action.UNREGISTER: "would_remove",
    Action.HOLD: "held",
    Action.BLOCK: "cannot",
}


KEPT_ACCOUNT = "already_mapped"
KEPT_REGISTRATION = "already_registered"
