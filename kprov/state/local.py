"""Opening the local state of one profile: the locks, the mapping and the registry, together.

Every command that changes local state goes through ``open_local_state``: it checks the
directories are private, takes the state lock and the mapping's own lock first, then loads
(and repairs) the journals, and hands back what it had to mend, and what the operator must
know, as warnings for the CLI to print. Nothing here knows the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kprov.errors import InputError
from kprov.gc_pause import freeze_for_this_command
from kprov.state.lock import StateLock
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.owner import PLAIN_IDS, check_owner, registry_holds_records
from kprov.state.registry import REGISTRY_FILES, Registry

if TYPE_CHECKING:
    from kprov.state.rebuild import MappingRebuild


@dataclass
class LocalState:
    """The journals of one state directory, loaded, under its lock."""

    journal: MappingJournal
    mapping: MappingIndex
    registry: Registry
    warnings: list[str] = field(default_factory=list)  # repairs and notices for the operator
    rebuilt: MappingRebuild | None = None  # what --rebuild-mapping recovered, and did not


@contextmanager
def open_local_state(
    state_dir: Path,
    mapping_path: Path,
    *,
    lock_timeout: float = 0.0,
    command: str = "",
    owner: Mapping[str, str] | None = None,
    rebuild_mapping: bool = False,
) -> Iterator[LocalState]:
    """Hold the locks, load (and repair) the mapping and the registry, close them after.

    Raises InputError (exit 2) when a mapping outside the state directory names a folder that
    does not exist, LockHeldError (exit 5) when another run holds either lock, ConfigError (exit 3)
    when a file is not a kprov journal or is damaged (left untouched), or when *owner* (the
    API, its key, how ids are made) is not the state's (``state.owner``), StorageError (exit 9)
    when the filesystem refuses (symlinks, a directory others can write, EACCES, EROFS, ...).

    A mapping that is missing while the registry records registrations is refused (exit 3,
    ``state.rebuild``) unless *rebuild_mapping*, which first recovers what the registry knows.
    """
    if mapping_path.parent != state_dir and not mapping_path.parent.is_dir():
        raise InputError(
            f"the mapping's folder {mapping_path.parent} does not exist; nothing was sent",
            hint="Create it first, or fix --mapping / KPROV_MAPPING (kprov does not create "
            "folders a typo could name).",
        )
    if not rebuild_mapping:
        _refuse_a_new_mapping_beside_records(state_dir, mapping_path)
    journal = MappingJournal(mapping_path)
    journal.check()  # a mistyped --mapping is refused before even a lock file is made beside it
    with StateLock(state_dir, timeout=lock_timeout, command=command, mapping_path=mapping_path):
        try:
            mapping = journal.load(repair=True)
            if owner:
                inferred = ("hashed" if mapping.sis_of else PLAIN_IDS) if len(mapping) else ""
                empty = not len(mapping) and not registry_holds_records(state_dir, REGISTRY_FILES)
                check_owner(state_dir, owner, inferred_ids=inferred, empty=empty)
            registry = Registry.open(state_dir, repair=True)
            _freeze_if_large(mapping, registry)
            try:
                state = LocalState(journal, mapping, registry)
                state.warnings.extend(mapping.repairs)
                state.warnings.extend(registry.warnings)
                state.warnings.extend(_mapping_checked(state_dir, state, rebuild=rebuild_mapping))
                if not state.warnings:  # sound, and nothing recorded yet: snapshots, if due
                    journal.save_snapshot(mapping)
                    registry.save_snapshots()
                yield state
            finally:
                registry.close()
        finally:
            journal.close()


FREEZE_AFTER = 100_000  # people or registrations loaded


def _freeze_if_large(mapping: MappingIndex, registry: Registry) -> None:
    """Loaded state lives until the command ends: past FREEZE_AFTER entries it is moved out
    of the cyclic collector's reach (millions of tuples, no cycle). Otherwise each full
    collection walks it all again: the checks below, over a million registrations, spent
    more than half of their 3.8 s in collections."""
    if len(mapping) + len(registry.registration_index.active) >= FREEZE_AFTER:
        freeze_for_this_command()


def _mapping_checked(state_dir: Path, state: LocalState, *, rebuild: bool) -> list[str]:
    """Refuse a lost mapping, or rebuild it on request; warn of one that lacks people the
    registry names (emptied, or an older backup)."""
    from kprov.state import rebuild as lost

    if rebuild:
        state.rebuilt = lost.rebuild_mapping(state.journal, state.mapping, state.registry)
        return state.rebuilt.summary(state.journal.path)
    lost.refuse_a_lost_mapping(state_dir, state.journal, state.registry)
    missing = lost.checked_against_registry(state.journal, state.mapping, state.registry)
    if not missing:
        return []
    if not len(state.mapping):
        lost.refuse_an_emptied_mapping(state_dir, state.journal, missing)
    return [
        f"the registry records registrations of {missing} people the mapping "
        f"{state.journal.path} does not hold (was it emptied, or restored from an older "
        "backup?): `kprov mapping rebuild` adds their account ids from the registry"
    ]


def _refuse_a_new_mapping_beside_records(state_dir: Path, mapping_path: Path) -> None:
    """A mapping named elsewhere that does not exist, for a state that already holds
    registrations, is almost surely a stale or mistyped path: starting it afresh would look up
    every account again. Starting one on purpose takes an empty file."""
    if mapping_path.parent == state_dir or mapping_path.exists():
        return
    if registry_holds_records(state_dir, REGISTRY_FILES):
        raise InputError(
            f"the mapping {mapping_path} does not exist, but the state directory {state_dir} "
            "already holds instances or registrations; nothing was sent",
            hint="Fix --mapping / KPROV_MAPPING. To make a new mapping there for this state on "
            "purpose, rebuild it from the registry: pass --rebuild-mapping (or run `kprov "
            "mapping rebuild`).",
        )
