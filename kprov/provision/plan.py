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
from typing import TYPE_CHECKING, NamedTuple

from kprov.rosters.model import Origin, Person, Skipped

if TYPE_CHECKING:
    from kprov.provision.guards import GuardVerdict


class Action(StrEnum):
    """What the executor does with an item (the last three send nothing; neither does an
    item a guard withheld, whatever its action: ``Item.guard``)."""

    CREATE_ACCOUNT = "create_account"
    CREATE_INSTANCE = "create_instance"
    REGISTER = "register"
    UNREGISTER = "unregister"
    HOLD = "hold"  # deliberately not done: needs a flag (--prune) or a human; not a failure
    BLOCK = "block"  # cannot be done as asked: a failure of this line (exit 1), nothing sent
    WAIT = "wait"  # a removal inside its grace (--grace N): absent, but not for long enough


MOVED = "moved"  # a removal and an addition of one person between two classes of one source
NEW_INSTRUCTOR = "instructor_changed"  # instructors leaving and joining one class

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
    change: str = ""  # MOVED or NEW_INSTRUCTOR: what this removal or addition is part of
    # The guard that withheld this item (``provision.guards``: "source", "creations",
    # "removals"): nothing is sent; the run saves it in a hold that a person approves or
    # dismisses (docs/holds.md). "" for everything else.
    guard: str = ""

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
    planned_in: str = ""  # the run that made the plan (a saved plan names it in the ledger)
    default_instance: str = ""  # --instance: the instance of lines that name none
    # What the guards judged (``provision.guards``): the guards that tripped, with why; the
    # fingerprint of each source read; the absence counts the run leaves for the next one.
    guards: GuardVerdict | None = None

    @property
    def removals_withheld(self) -> bool:
        """The removal brake is engaged: UNREGISTER items (and the role changes that need
        them) are withheld (``Item.guard``), everything else goes."""
        return self.brake is not None and self.brake.engaged

    @property
    def withheld(self) -> bool:
        """A guard withheld some items: a run saves them as a hold and exits 6."""
        return any(i.guard for i in self.items)

    @property
    def has_changes(self) -> bool:
        """Whether a run would send anything (what a guard withheld is not sent)."""
        return any(i.action in SENDING and not i.guard for i in self.items)

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
    if item.guard:
        return "withheld"
    return _PLAN_WORDS[item.action]


_PLAN_WORDS = {
    Action.CREATE_ACCOUNT: "would_create",
    Action.CREATE_INSTANCE: "would_create_instance",
    Action.REGISTER: "would_register",
    Action.UNREGISTER: "would_remove",
    Action.HOLD: "held",
    Action.BLOCK: "cannot",
    Action.WAIT: "waiting",
}


KEPT_ACCOUNT = "already_mapped"
KEPT_REGISTRATION = "already_registered"
