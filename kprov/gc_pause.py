"""The cyclic garbage collector paused around work that makes millions of objects and no
cycles (reading a roster, loading a journal, building a plan).

Each of those allocates tuples and strings by the million; every so many allocations the
collector walks all the young objects again, finds no cycle, and has cost a third of the
work's time. This module imports nothing of kprov's, so every layer can use it.

When the collector comes back on after a pause that made many objects (a journal, a
roster), they are frozen (``gc.freeze``: left out of every later collection) rather than
walked once more by the first collection that follows, and again by the next generation's:
a million registrations cost 0.3 s of collection for nothing. They are still freed as soon
as nothing refers to them; only a cycle among them would wait for the process to end, and
they make none. A freeze takes every object alive, though, and every cycle that happens to
be garbage at that moment (an earlier run's): it is kept until the process ends, which not
even ``gc.collect()`` changes. So only a process that runs one command and ends freezes
(the console script says so: ``allow_freezing``); a test session, or a program that uses
kprov's modules to run plan after plan, keeps collecting as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_AFTER = 200_000  # objects made (net) in a pause past which they are frozen
_one_command = False  # set by ``allow_freezing``: this process ends after its command


def allow_freezing() -> None:
    """This process runs one command and ends (the console script): large pauses freeze."""
    global _one_command
    _one_command = True


def freeze_for_this_command() -> None:
    """What is alive now lives until the command ends (a loaded state, a statewide roster,
    a plan): left out of every later collection, in a process of one command only."""
    if _one_command:
        gc.freeze()


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off inside the block; back on after it, unless it was off already
    (what the block made frozen first, when it made more than ``FREEZE_AFTER`` objects in a
    process of one command)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if _one_command and gc.get_count()[0] > FREEZE_AFTER:
                gc.freeze()
            gc.enable()


YOUNG = 20_000  # objects allocated between young collections while ``gc_lenient`` holds


@contextmanager
def gc_lenient(young: int = YOUNG) -> Iterator[None]:
    """The collector on, but its young generation collected every *young* allocations, not
    every 700, inside the block (a run's requests: each makes tuples, dicts and answers that
    mostly die young; collecting every 700 cost 0.2 s of a 50,000-account import's ~4 s, and
    0.09 s at 10,000). Cycles are still found, a little later: memory stays bounded."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
