"""The API's entity limits and the removal brake's arithmetic, checked before anything is sent."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter, itemgetter

from kprov.api_facts import MAX_FIELD
from kprov.errors import InputError
from kprov.provision.plan import Action, Item
from kprov.rosters import Problem, problems_error
from kprov.rosters.model import Person
from kprov.state.registry import RegistrationIndex

MAX_REGISTRATIONS = 500  # per learning instance and per account (entity limits)


def removal_limit(spec: str, managed: int, *, option: str = "--max-removals") -> int:
    """'12' -> 12; '5%' -> 5% of the managed registrations (rounded down); the creation
    brake reads its --max-creations the same way."""
    spec = spec.strip()
    try:
        if spec.endswith("%"):
            share = float(spec[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return math.floor(managed * share / 100)
        value = int(spec)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise InputError(f"{option} {spec!r}: give a number (12) or a share (5%)") from None


def check_entity_limits(lines: Sequence[tuple[Person, str]]) -> None:
    """Refused up front: more than 500 registrations for one account, and an instance key
    longer than a character field may be (it may become the instance's name). A class of
    more than 500 is a `cannot` for its lines only (``provision.class_shape``).

    Counted in C (a million lines: no list per account); the lines are walked again, in
    order, only when something is over, to name its first line exactly as before."""
    per_account = Counter(map(_EXTERNAL, map(_PERSON, lines)))
    over = {name for name, n in per_account.items() if n > MAX_REGISTRATIONS}
    long_refs = {ref for ref in set(map(_REF, lines)) if len(ref) > MAX_FIELD}
    if not over and not long_refs:
        return
    problems: list[Problem] = []
    seen: Counter[str] = Counter()
    named: set[str] = set()
    firsts: dict[str, Person] = {}
    for person, ref in lines:
        if ref in long_refs and ref not in named:
            named.add(ref)
            problems.append(
                Problem(
                    person.origin.file,
                    person.origin.line,
                    f"instance {ref[:40]!r}... is {len(ref)} characters; the API allows "
                    f"{MAX_FIELD}: use a shorter key",
                )
            )
        name = person.external_id
        if name in over:
            seen[name] += 1
            if seen[name] == MAX_REGISTRATIONS + 1:
                firsts[name] = person
    for name in per_account:  # in the order each account first appears, as before
        if name in firsts:
            first_over = firsts[name].origin
            problems.append(
                Problem(
                    first_over.file,
                    first_over.line,
                    f"account {name!r} would have {per_account[name]} registrations; the API "
                    f"allows {MAX_REGISTRATIONS} (this line is the first over); split it",
                )
            )
    if problems:
        raise problems_error(problems)


_PERSON = itemgetter(0)
_REF = itemgetter(1)
_EXTERNAL = attrgetter("external_id")


def block_past_capacity(items: list[Item], index: RegistrationIndex) -> None:
    """The API holds at most 500 registrations per instance and per account: counting what
    local state records (less the plan's removals), the additions past it become BLOCK items
    (they cannot be done; the rest of the plan goes on)."""
    adds = [n for n, i in enumerate(items) if i.action is Action.REGISTER and not i.role_change]
    if not adds:
        return
    per_instance, per_account = index.counts()  # by column: no record is made
    for item in items:
        if item.action is Action.UNREGISTER and not item.role_change:
            per_instance[item.instance_id] -= 1
            per_account[item.account_id] -= 1
    for n in adds:
        item = items[n]
        instance = item.instance_id or f"new:{item.instance}"
        account = item.account_id or f"new:{item.external_id}"
        full = "instance" if per_instance[instance] >= MAX_REGISTRATIONS else (
            "account" if per_account[account] >= MAX_REGISTRATIONS else ""
        )  # fmt: skip
        if full:
            reason = (
                f"the {full} already holds {MAX_REGISTRATIONS} registrations, the API's limit: "
                "remove some first"
            )
            items[n] = item._replace(action=Action.BLOCK, reason=reason)
            continue
        per_instance[instance] += 1
        per_account[account] += 1
