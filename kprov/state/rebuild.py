"""A lost mapping: refused, or rebuilt from what the registry recorded, exactly.

The mapping (external id -> account id) is the partner's only record: the API cannot look an
account up by its external id, and an account can never be deleted or its id reused. A
mapping that disappeared beside a registry that records registrations is therefore refused
(exit 3, nothing sent): carrying on would look up everyone in tonight's roster again, one
read at a time, and the accounts of everyone else (people who left) would be lost for ever.

The operator restores the file from a backup, or asks for a rebuild. Every registration row
kprov wrote names the account id and the external id it was made for, so a rebuild recovers
exactly those pairs (status ``recovered``), never a guess: an external id the registry gives
two accounts, or an account two external ids, is reported and left out, and so is a row that
does not hold a well-formed account id. What the registry never knew (accounts made by
`accounts import` and never registered, SIS ids of hashed ids) is said, not invented.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import eq, is_
from pathlib import Path

from kprov.api_facts import is_uuid
from kprov.errors import ConfigError
from kprov.state.journal import now_iso
from kprov.state.mapping import STATUS_RECOVERED, MappingEntry, MappingIndex, MappingJournal
from kprov.state.mapping_index import Account, account_text
from kprov.state.owner import registry_holds_records
from kprov.state.registry import REGISTRY_FILES, Registry

# The API's ids, as the registry recorded them (checked there when they were answered).
SHOWN = 20  # ids named in a message; the rest are counted


@dataclass
class MappingRebuild:
    """What a rebuild found in the registry: rows to add, and what it could not recover."""

    recovered: list[MappingEntry] = field(default_factory=list)
    already: int = 0  # pairs the mapping holds already
    conflicts: list[str] = field(default_factory=list)  # why some pairs were left out
    unnamed: int = 0  # registration rows without an external id (their owner is unknown)
    malformed: int = 0  # registration rows whose account id is not an id

    def summary(self, mapping_path: Path) -> list[str]:
        """What the operator must read, one sentence per line."""
        lines = [
            f"rebuilt the mapping {mapping_path} from the registry: {len(self.recovered)} "
            f"account(s) recovered exactly (status 'recovered'), {self.already} already there"
        ]
        if self.conflicts:
            shown = "; ".join(self.conflicts[:SHOWN])
            more = (
                f" (and {len(self.conflicts) - SHOWN} more)" if len(self.conflicts) > SHOWN else ""
            )
            lines.append(
                f"left out, as the registry contradicts itself or the mapping: {shown}{more}"
            )
        if self.unnamed or self.malformed:
            lines.append(
                f"{self.unnamed} registration row(s) name no external id and {self.malformed} "
                "no well-formed account id: those accounts cannot be matched to a person"
            )
        lines.append(
            "not recoverable from the registry: accounts never registered in an instance (e.g. "
            "made by `kprov accounts import`) and the SIS ids of hashed ids; people still in a "
            "roster are recovered from the API as runs meet them; anyone else's account id is "
            "only in a backup of the mapping"
        )
        return lines


def people_recorded(registry: Registry) -> tuple[int, int]:
    """(registration rows, distinct external ids among them) the registry has ever written:
    people who left count too, their account ids being the ones no roster will bring back."""
    rows, people = 0, set()
    for _line, row in registry.registrations.rows():
        rows += 1
        if row[4]:
            people.add(row[4])
    return rows, len(people)


def refuse_a_lost_mapping(state_dir: Path, journal: MappingJournal, registry: Registry) -> None:
    """ConfigError (exit 3) when the mapping file is missing but the registry records people."""
    if journal.path.exists() or not registry_holds_records(state_dir, (REGISTRY_FILES[1],)):
        return
    rows, people = people_recorded(registry)
    raise ConfigError(
        f"the mapping {journal.path} is missing, but the registry in {state_dir} records "
        f"registrations of {people} people ({rows} rows): the mapping is the only record of "
        "their account ids; nothing was sent",
        hint="Restore the mapping from a backup and rerun. Or rebuild what the registry knows: "
        "`kprov mapping rebuild` (or rerun with --rebuild-mapping); it says what it cannot "
        "recover.",
    )


def refuse_an_emptied_mapping(state_dir: Path, journal: MappingJournal, people: int) -> None:
    """ConfigError (exit 3) for a mapping that holds nobody while the registry has *people*
    registered: emptied (truncated, `: >`, a failed copy) as surely as a missing one is lost.
    Carrying on would keep the partner's record empty of everyone who is in no roster now."""
    raise ConfigError(
        f"the mapping {journal.path} holds nobody, but the registry in {state_dir} has "
        f"{people} people registered: the mapping is the only record of their account ids; "
        "nothing was sent",
        hint="Restore the mapping from a backup and rerun. Or rebuild what the registry knows: "
        "`kprov mapping rebuild` (or rerun with --rebuild-mapping); it says what it cannot "
        "recover.",
    )


def refuse_an_unreadable_export(state_dir: Path, journal: MappingJournal) -> None:
    """`mapping export` of a mapping that is missing or holds nobody, beside a registry that
    records registrations: exit 3, as every command that opens the state refuses it. An empty
    export there would read as "nobody is mapped" and could replace a good backup."""
    if not registry_holds_records(state_dir, (REGISTRY_FILES[1],)):
        return
    if not journal.path.exists():
        refuse_a_lost_mapping(state_dir, journal, Registry.open(state_dir))
    rows, people = people_recorded(Registry.open(state_dir))
    raise ConfigError(
        f"the mapping {journal.path} holds nobody, but the registry in {state_dir} records "
        f"registrations of {people} people ({rows} rows): nothing was exported",
        hint="Restore the mapping from a backup, or rebuild what the registry knows: "
        "`kprov mapping rebuild`.",
    )


def unmapped_registrations(mapping: MappingIndex, registry: Registry) -> int:
    """People with an active registration whom the mapping does not hold (it was emptied,
    or restored from an older backup): `kprov mapping rebuild` adds them."""
    return _unmapped(registry, _mapped_values(mapping, registry))


def checked_against_registry(
    journal: MappingJournal, mapping: MappingIndex, registry: Registry
) -> int:
    """``refuse_a_foreign_mapping``, then ``unmapped_registrations``: one look-up in the
    mapping for each active registration serves both."""
    values = _mapped_values(mapping, registry)
    _refuse_differing(journal, registry, values)
    return _unmapped(registry, values)


def _mapped_values(mapping: MappingIndex, registry: Registry) -> list[Account | None]:
    """What the mapping stores for each active registration's external id (None: nothing),
    in order: looked up a column at a time, in C."""
    _accounts, externals = registry.registration_index.accounts_and_externals()
    return list(map(mapping.account_of.compact.get, externals))


def _unmapped(registry: Registry, values: list[Account | None]) -> int:
    """How many external ids of active registrations the mapping does not hold."""
    if None not in values:
        return 0
    _accounts, externals = registry.registration_index.accounts_and_externals()
    missing = set(compress(externals, map(is_, values, repeat(None))))
    missing.discard("")
    return len(missing)


def _all_the_same(accounts: list[Account], values: list[Account | None]) -> bool:
    """Whether every registration's account (*accounts*: the registry's, as the mapping
    stores them) is the one the mapping gives its external id (*values*), or the mapping
    gives none; compared a column at a time in C (a million registrations: a fraction of a
    second). False, deciding nothing, when any differs: the caller then compares each
    pair's texts (their case, too, is no matter)."""
    unmapped = values.count(None)
    if not unmapped:  # everyone mapped (most nights): one comparison of two lists
        return accounts == values
    return sum(map(eq, accounts, values)) + unmapped == len(values)


def refuse_a_foreign_mapping(
    journal: MappingJournal, mapping: MappingIndex, registry: Registry
) -> None:
    """ConfigError (exit 3) when the mapping gives people other accounts than the ones the
    registry registered: an external id keeps its account for ever, so the file is another
    state's (another profile's, another district's backup). Carrying on would register those
    accounts -- other people, where external ids collide -- in this state's classes."""
    _refuse_differing(journal, registry, _mapped_values(mapping, registry))


def _refuse_differing(
    journal: MappingJournal, registry: Registry, values: list[Account | None]
) -> None:
    index = registry.registration_index
    accounts, _externals = index.accounts_and_externals()
    if _all_the_same(accounts, values):
        return
    differ = sorted(
        {
            (r.external_user_id, text, r.account_id)
            for r, value in zip(index.active.values(), values, strict=True)
            if value is not None and (text := account_text(value)).lower() != r.account_id.lower()
        }
    )
    if not differ:
        return
    shown = "; ".join(f"{e!r}: mapping {m}, registry {r}" for e, m, r in differ[:3])
    raise ConfigError(
        f"the mapping {journal.path} gives {len(differ)} people other accounts than the "
        f"registry registered ({shown}): an external id keeps its account for ever, so this "
        "mapping belongs to another state (another profile's, or another setup's backup); "
        "nothing was sent",
        hint="Restore this state's own mapping from a backup and rerun. Or move this file "
        "aside and rebuild what the registry knows: rerun with --rebuild-mapping (or `kprov "
        "mapping rebuild`).",
    )


def plan_rebuild(mapping: MappingIndex, registry: Registry) -> MappingRebuild:
    """The exact (external id, account id) pairs of every registration row ever written."""
    found = MappingRebuild()
    accounts_of: dict[str, set[str]] = defaultdict(set)  # ids compared without case ...
    people_of: dict[str, set[str]] = defaultdict(set)
    spelled: dict[str, str] = {}  # ... and recovered as the registry spelled them
    for _line, row in registry.registrations.rows():
        account_id, external_id = row[0], row[4]
        if not external_id:
            found.unnamed += 1
        elif not is_uuid(account_id):
            found.malformed += 1
        else:
            accounts_of[external_id].add(account_id.lower())
            people_of[account_id.lower()].add(external_id)
            spelled.setdefault(account_id.lower(), account_id)
    mapped = {account.lower(): ext for ext, account in mapping.account_of.items()}
    stamp = now_iso()
    for external_id, accounts in sorted(accounts_of.items()):
        if len(accounts) > 1:
            found.conflicts.append(f"{external_id!r} has {len(accounts)} accounts")
            continue
        [account_id] = accounts
        if len(people_of[account_id]) > 1:
            found.conflicts.append(f"account {account_id} has {len(people_of[account_id])} ids")
            continue
        known = mapping.account_of.get(external_id)
        holder = mapped.get(account_id)
        if known is not None and known.lower() == account_id:
            found.already += 1
        elif known is not None:
            found.conflicts.append(f"{external_id!r} is mapped to another account ({known})")
        elif holder is not None:
            found.conflicts.append(f"account {account_id} is mapped to {holder!r}")
        else:
            found.recovered.append(
                MappingEntry(external_id, spelled[account_id], stamp, "", STATUS_RECOVERED)
            )
    return found


def rebuild_mapping(
    journal: MappingJournal, mapping: MappingIndex, registry: Registry
) -> MappingRebuild:
    """Add the recovered rows (durably, then to the index); the file exists afterwards, even
    when nothing could be recovered, so the next run is not refused again."""
    found = plan_rebuild(mapping, registry)
    journal.append(found.recovered)
    journal.ensure_exists()
    for entry in found.recovered:
        mapping.apply(entry)
    return found
