"""Opening the local state of one profile: the lock, the mapping and the registry, together.

Every command that changes local state goes through ``open_local_state``: it takes the lock
first, then loads (and repairs) the journals, and hands back what it had to mend as warnings
for the CLI to print. Nothing here knows the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kprov.state.lock import StateLock
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.registry import Registry


@dataclass
class LocalState:
    """The journals of one state directory, loaded, under its lock."""

    journal: MappingJournal
    mapping: MappingIndex
    registry: Registry
    warnings: list[str] = field(default_factory=list)  # repairs and notices for the operator


@contextmanager
def open_local_state(
    state_dir: Path,
    mapping_path: Path,
    *,
    lock_timeout: float = 0.0,
    command: str = "",
) -> Iterator[LocalState]:
    """Hold the state lock, load (and repair) the mapping and the registry, close them after."""
    with StateLock(state_dir, timeout=lock_timeout, command=command):
        journal = MappingJournal(mapping_path)
        try:
            mapping = journal.load()
            registry = Registry.open(state_dir)
            try:
                state = LocalState(journal, mapping, registry)
                state.warnings.extend(mapping.repairs)
                state.warnings.extend(registry.repairs)
                yield state
            finally:
                registry.close()
        finally:
            journal.close()
