"""The cyclic garbage collector paused around work that makes millions of objects and no
cycles (reading a roster, loading a journal, building a plan).

Each of those allocates tuples and strings by the million; every so many allocations the
collector walks all the young objects again, finds no cycle, and has cost a third of the
work's time. This module imports nothing of kprov's, so every layer can use it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector off inside the block; back on after it, unless it was off already."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
