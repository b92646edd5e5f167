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
    monkeypatch.setattr(pause, "_one_command", True)  # the console script's process
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


def test_a_long_running_process_keeps_no_garbage_across_a_large_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A test session or a program using kprov's modules runs many plans in one process: a
    freeze there kept, for the rest of the process, every cycle that was garbage when a large
    pause ended (an earlier run's, 8 MB a run in a loop), which not even gc.collect() frees."""
    import weakref

    import kprov.gc_pause as pause

    class Node:
        pass

    monkeypatch.setattr(pause, "FREEZE_AFTER", 5_000)
    frozen = gc.get_freeze_count()
    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle  # garbage, not yet collected
    try:
        with gc_paused():
            large = [[n] for n in range(20_000)]
        gc.collect()
        assert gone() is None and gc.get_freeze_count() == frozen
        assert len(large) == 20_000
    finally:
        gc.unfreeze()


def test_the_console_script_is_a_process_of_one_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import kprov.cli.main as main
    import kprov.gc_pause as pause

    monkeypatch.setattr(pause, "_one_command", False)
    monkeypatch.setattr(main, "build_app", lambda only=None: lambda prog_name: None)
    main.run()
    assert pause._one_command


def test_what_lives_until_the_command_ends_is_frozen_only_in_a_command_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loaded state's, the roster's and the plan's freezes (cli/common, cli/flow,
    state/local) keep a test session's or a library caller's earlier garbage otherwise."""
    import gc

    import kprov.gc_pause as pause

    monkeypatch.setattr(pause, "_one_command", False)
    before = gc.get_freeze_count()
    pause.freeze_for_this_command()
    assert gc.get_freeze_count() == before
    monkeypatch.setattr(pause, "_one_command", True)
    try:
        pause.freeze_for_this_command()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
