"""Planning: one pure function from what the rosters ask for and what local state records
to a frozen ``Plan``. Every decision local state can make for every command ("already done?",
"allowed?", "within the limits?") is made here, once; what only the server can say (an
"already registered" after a lost answer) is judged, narrowly, where the answer arrives
(``provision.tasks``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress
from operator import not_

from kprov.api_facts import is_uuid
from kprov.errors import InputError
from kprov.provision.changes import name_changes, removal_item
from kprov.provision.class_shape import block_misshapen_classes, losing_last_instructor
from kprov.provision.fixed_at_creation import unchangeable
from kprov.provision.guards import NO_HISTORY, GuardHistory
from kprov.provision.limits import block_past_capacity, check_entity_limits
from kprov.provision.plan import (
    KEPT_ACCOUNT,
    KEPT_REGISTRATION,
    Action,
    Brake,
    Item,
    Plan,
)
from kprov.provision.planner_guards import GuardSteps
from kprov.provision.planner_lines import LineSteps
from kprov.provision.planner_removals import ID_UNKNOWN, RemovalSteps
from kprov.provision.request import Request
from kprov.rosters import Problem, problems_error
from kprov.rosters.model import INSTRUCTOR, Person
from kprov.rosters.people import Selection
from kprov.rosters.people_columns import id_chunks, instance_counts, people_at, positions
from kprov.state.mapping import MappingIndex
from kprov.state.mapping_index import account_text
from kprov.state.registry import RegistrationRecord, Registry

NOT_MAPPED = "not in the mapping"
NO_ACCOUNT = "no account: not in the mapping (run `kprov accounts import`, or drop --no-create)"


def build_plan(
    request: Request,
    mapping: MappingIndex,
    registry: Registry,
    history: GuardHistory = NO_HISTORY,
) -> Plan:
    """The plan for *request* against local state and what the ledger says about earlier
    runs (*history*: ``provision.guards``); InputError (exit 2) if it cannot be made."""
    planner = _Planner(request, mapping, registry, history)
    planner.plan()
    return Plan(
        command=request.command,
        items=tuple(planner.items),
        kept={
            reason: Selection(request.people, at) for reason, at in planner.kept_at.items() if at
        },
        skipped=tuple(request.skipped),
        brake=planner.brake,
        prune=request.prune,
        warnings=(*request.warnings, *planner.warnings()),
        sources=tuple(request.sources),
        default_instance=request.default_instance or "",
        guards=planner.verdict,
    )


class _Planner(LineSteps, RemovalSteps, GuardSteps):  # bases before those that declare them
    def __init__(
        self, request: Request, mapping: MappingIndex, registry: Registry, history: GuardHistory
    ) -> None:
        self.request = request
        self.mapping = mapping
        self.registry = registry
        self.history = history
        self.verdict = None
        self.explicit_items: set[int] = set()  # removals a row asked for (grace remembers them)
        self.items: list[Item] = []
        # lines already as asked, by reason: their positions in request.people (4 bytes each)
        self.kept_at = {KEPT_ACCOUNT: positions(), KEPT_REGISTRATION: positions()}
        self._line_positions = positions()
        self.brake: Brake | None = None
        self.instance_ids: dict[str, str] = {}  # ref -> API id ("" when the plan creates it)
        self.desired: set[tuple[str, str]] = set()  # (external id, instance id or ref)
        self.changed: set[tuple[str, str]] = set()  # (account, instance) removed on purpose
        self._asked: dict[tuple[str, str], str] = {}  # registrations lines ask for -> ref
        self._registered_by_ext: dict[tuple[str, int], int] | None = None
        self.removal_items: list[int] = []  # removals (sent or held), for naming moves
        self.addition_items: list[int] = []  # registrations of new lines, for naming moves
        self.fixed: list[str] = []  # what the manifest asks to change that the API cannot
        self.matched: bytearray | None = None  # registry slots kept by lines planned by column

    def plan(self) -> None:
        request = self.request
        if not (request.register and self._lines_by_column()):  # else one by one
            lines = self._lines() if request.register else []
            self._accounts(lines)
            if lines or request.removals or request.instances:
                self._instances([*request.instances, *(ref for _p, ref in lines)])
            self._registrations(lines)
        self._explicit_removals()
        self._remembered_removals()
        self._implicit_removals()
        self._judge_sources()
        absences = self._wait_out_grace()
        # Moves are named while the indexes hold; then classes that cannot work are blocked
        # (which may drop account creations only they needed); then the guards.
        name_changes(self.items, self.removal_items, self.addition_items,
                     request.instance_origins, self._earlier())  # fmt: skip
        self._check_classes()
        self._check_capacity()
        self._guard(absences)
        # what the run will really remove (not what a guard withheld) may leave a class untaught
        leaving = {
            i.instance_id
            for i in self.items
            if i.action is Action.UNREGISTER and i.role == INSTRUCTOR and not i.guard
        }
        active = self.registry.registration_index.in_instances(leaving)  # only theirs count
        self.fixed.extend(losing_last_instructor(self.items, active))

    # ------------------------------------------------------------------ lines

    def _lines(self) -> list[tuple[Person, str]]:
        """(person, instance ref) of every enrolment line, checked as a whole."""
        default = self.request.default_instance
        lines: list[tuple[Person, str]] = []
        problems: list[Problem] = []
        at = self._line_positions  # where each line is in request.people (kept lines)
        for position, person in enumerate(self.request.people):
            if person.account_only:
                continue
            if person.instance_key and default:
                problems.append(
                    Problem(
                        person.origin.file,
                        person.origin.line,
                        f"the roster names instance {person.instance_key!r} but --instance "
                        f"is given too ({default!r}): use one of them (drop --instance, or remove "
                        "the 'instance' column)",
                    )
                )
                continue
            ref = person.instance_key or default
            if not ref:
                problems.append(
                    Problem(
                        person.origin.file,
                        person.origin.line,
                        "no learning instance for this line: add an 'instance' column or "
                        "pass --instance ID|KEY",
                    )
                )
                continue
            lines.append((person, ref))
            at.append(position)
        if problems:
            raise problems_error(problems)
        if not lines and not self.request.removals and not self.request.nobody_is_fine:
            raise InputError(
                "the roster names nobody to register",
                hint="Give a roster with learners or instructors.",
            )
        check_entity_limits(lines)
        return lines

    # --------------------------------------------------------------- accounts

    def _accounts(self, lines: list[tuple[Person, str]]) -> None:
        request = self.request
        seen: set[str] = set()  # unmapped ids planned already (a person may be in many lines)
        if request.register:  # every line keeps its fate in _registrations
            for person, _ref in lines:
                self._account_for(person, seen)
            return
        # accounts import: every line's id looked up a chunk at a time, people made only
        # for the ids not mapped (a statewide roster is mostly mapped)
        mapped = self.mapping.account_of.keys()
        kept = self.kept_at[KEPT_ACCOUNT]
        unmapped = positions()
        for base, ids in id_chunks(request.people):
            found = list(map(mapped.__contains__, ids))
            kept.extend(compress(range(base, base + len(ids)), found))
            if not all(found):
                unmapped.extend(base + at for at in compress(range(len(ids)), map(not_, found)))
        if unmapped and request.create_accounts:
            self._new_accounts(people_at(request.people, unmapped), seen)

    def _new_accounts(self, people: Iterable[Person], seen: set[str]) -> None:
        """``_account_for`` of people known to be unmapped, in one loop (an import of 50,000
        new people: the plan's cost was a third of the run's serial CPU)."""
        default = self.request.default_instance or ""
        append = self.items.append
        make = Item._make
        for ext, role, origin, instance_key, sis_id, _only in people:
            if ext in seen:
                continue
            seen.add(ext)
            fields = (Action.CREATE_ACCOUNT, ext, role, instance_key or default, "", "", "",
                      sis_id or "", origin, NOT_MAPPED, None, False, "", "")  # fmt: skip
            append(make(fields))  # every field, in Item's order (a test compares)

    def _account_for(self, person: Person, seen: set[str]) -> None:
        """A CREATE_ACCOUNT item for *person*, unless mapped, planned already or not wanted."""
        request = self.request
        ext = person.external_id
        if ext in self.mapping.account_of or ext in seen or not request.create_accounts:
            return
        seen.add(ext)
        self.items.append(
            Item(
                Action.CREATE_ACCOUNT,
                external_id=ext,
                role=person.role,
                instance=person.instance_key or request.default_instance or "",
                sis_id=person.sis_id or "",
                origin=person.origin,
                reason=NOT_MAPPED,
            )
        )

    # -------------------------------------------------------------- instances

    def _instances(self, refs: Sequence[str]) -> None:
        unknown: list[str] = []
        index = self.registry.instance_index
        removal_refs = (
            p.instance_key or self.request.default_instance or "" for p in self.request.removals
        )
        for ref in dict.fromkeys([*refs, *removal_refs]):
            if not ref:
                continue
            record = index.find(ref)
            if record is not None:
                self.instance_ids[ref] = record.instance_id
                if self.request.command == "sync" and ref in self.request.specs:
                    self.fixed.extend(unchangeable(ref, record, self.request))
            elif ref in self.request.specs:
                self.instance_ids[ref] = ""
                spec = self.request.specs[ref]
                self.items.append(
                    Item(
                        Action.CREATE_INSTANCE,
                        instance=ref,
                        spec=spec,
                        reason="not created yet",
                    )
                )
            elif is_uuid(ref):
                self.instance_ids[ref] = ref.lower()  # made outside kprov: its API id, as stored
            elif ref in refs:
                unknown.append(ref)
        if unknown:
            raise InputError(
                f"{len(unknown)} learning instance(s) are not known to kprov; nothing was sent:",
                problems=[repr(u) for u in unknown[:50]],
                hint="Create them first (kprov instances create --key KEY --graph-id G "
                "--name N), pass --graph-id G to create them on the way, or give the "
                "instance's API id.",
            )

    # ---------------------------------------------------------- registrations

    def _registrations(self, lines: list[tuple[Person, str]]) -> None:
        for (person, ref), position in zip(lines, self._line_positions, strict=True):
            self._register_line(person, ref, position)

    def _register_line(self, person: Person, ref: str, position: int) -> None:
        """The fate of one enrolment line: kept, or an item (REGISTER, BLOCK, HOLD, or a
        role change's pair)."""
        request = self.request
        ext = person.external_id
        value = self.mapping.account_of.compact.get(ext)
        account_id = "" if value is None else account_text(value)
        instance_id = self.instance_ids.get(ref, "")
        self.desired.add((ext, instance_id or ref))
        if not account_id and not request.create_accounts:
            self._add(Action.BLOCK, person, ref, instance_id, "", NO_ACCOUNT)
            return
        active = self.registry.registration_index.active
        existing = active.get((account_id, instance_id)) if account_id and instance_id else None
        if existing is None and not account_id and instance_id:
            existing = self._registered_without_mapping(ext, instance_id)
        if existing is not None and existing.type == person.role:
            self.kept_at[KEPT_REGISTRATION].append(position)  # disabled since, or not: done
        elif ext in self.mapping.disabled:
            reason = "the account is disabled (kprov accounts disable); it cannot be registered"
            self._add(Action.BLOCK, person, ref, instance_id, account_id, reason)
        elif self._asked_already(person, ref, instance_id, account_id):
            return
        elif existing is None:
            self.addition_items.append(len(self.items))
            self._add(Action.REGISTER, person, ref, instance_id, account_id, "not registered")
        elif len(self._roles_stated(ext, instance_id)) > 1:  # another line keeps it as it is
            reason = "both roles in this class, named by its key and by its id: name it one way"
            self._add(Action.BLOCK, person, ref, instance_id, account_id, reason)
        else:
            self._role_conflict(person, ref, existing)

    def _add(
        self,
        action: Action,
        person: Person,
        ref: str,
        instance_id: str,
        account_id: str,
        reason: str,
        *,
        role_change: bool = False,
    ) -> None:
        self.items.append(
            Item(
                action,
                external_id=person.external_id,
                role=person.role,
                instance=ref,
                instance_id=instance_id,
                account_id=account_id,
                sis_id=person.sis_id or "",
                origin=person.origin,
                reason=reason,
                role_change=role_change,
            )
        )

    def _role_conflict(self, person: Person, ref: str, existing: RegistrationRecord) -> None:
        change = f"registered as {existing.type}; the roster says {person.role}"
        if self.request.prune and existing.registration_id:
            self.changed.add((existing.account_id, existing.instance_id))
            self.items.append(removal_item(existing, ref, person, f"{change}: role change", True))
            self._add(
                Action.REGISTER,
                person,
                ref,
                existing.instance_id,
                existing.account_id,
                f"{change}: role change",
                role_change=True,
            )
        elif self.request.prune:
            self._add(Action.HOLD, person, ref, existing.instance_id, existing.account_id,
                      f"{change}; {ID_UNKNOWN}")  # fmt: skip
        else:
            fix = (
                "pass --prune to change the role"
                if self.request.command == "sync"
                else "to change the role, remove that registration first (kprov unregister, "
                "or kprov sync --prune)"
            )
            reason = f"already {change}: {fix}"
            self._add(Action.BLOCK, person, ref, existing.instance_id, existing.account_id, reason)

    def warnings(self) -> list[str]:
        """Said on every run until someone acts: what the manifest asks of an existing class
        that the API cannot do, and removals that can never be sent."""
        stuck = sum(1 for i in self.items if i.action is Action.HOLD and ID_UNKNOWN in i.reason)
        if not stuck or not self.request.prune:
            return self.fixed
        return [
            *self.fixed,
            f"{stuck} removal(s) cannot be sent because their registration ids are unknown: "
            "see `kprov registrations unresolved`, then `resolve` or `forget` each",
        ]

    def _registered_without_mapping(self, ext: str, instance_id: str) -> RegistrationRecord | None:
        """A registration the registry holds for an id the mapping lost (a torn last line
        moved aside): it is not sent again; the account is recovered, which heals the mapping."""
        index = self.registry.registration_index
        if self._registered_by_ext is None:
            self._registered_by_ext = index.slots_by_external()
        code = index.codes.get(instance_id)
        slot = None if code is None else self._registered_by_ext.get((ext, code))
        return None if slot is None else index.record_at(slot)

    @property
    def kept(self) -> Mapping[str, Sequence[Person]]:
        """The lines already as asked, by reason, read from their positions when needed."""
        people = self.request.people
        return {reason: Selection(people, at) for reason, at in self.kept_at.items()}

    def _check_classes(self) -> None:
        default = self.request.default_instance or ""
        kept: Counter[str] = Counter()  # read only for classes the plan adds people to
        if any(item.action is Action.REGISTER for item in self.items):
            at = self.kept_at[KEPT_REGISTRATION]
            for key, n in instance_counts(self.request.people, at).items():
                kept[key or default] += n
        # the class judgments ask which classes keep an instructor: the instructors suffice
        block_misshapen_classes(self.items, self.registry.registration_index.instructors(), kept)

    def _check_capacity(self) -> None:
        block_past_capacity(self.items, self.registry.registration_index)
