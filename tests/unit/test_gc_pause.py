"""gc_paused: the collector is off inside, and left as it was found after (even on error)."""

from __future__ import annotations

import gc

import pytest

from kprov.gc_pause import gc_paused


def test_paused_inside_and_enabled_again_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_a_large_pause_made_is_frozen_and_a_small_one_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kprov.gc_pause as pause

    monkeypatch.setattr(pause, "FREEZE_AFTER", 5_000)
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        with gc_paused():
            small = [[n] for n in range(100)]
        assert gc.get_freeze_count() == frozen  # a few objects: collected as usual
        with gc_paused():
            large = [[n] for n in range(20_000)]  # made in the pause: left out of collections
        assert gc.get_freeze_count() >= frozen + 20_000 and gc.isenabled()
        assert len(small) + len(large) == 20_100
    finally:
        gc.unfreeze()
