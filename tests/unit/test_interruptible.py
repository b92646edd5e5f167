"""Signals during a run: what stops it, and what abandons the requests in flight."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from kprov.cli import interrupts


class Abandoned(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_a_second_hang_up_stops_the_run_but_never_abandons_what_is_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adversary, round three: a closed ssh session often delivers SIGHUP twice (the terminal,
    then the shell). The second one abandoned the requests in flight (os._exit), so the run
    wrote no log line and left duplicate instances and registrations without their id."""

    def abandon(code: int) -> None:
        raise Abandoned(code)

    monkeypatch.setattr(interrupts.os, "_exit", abandon)
    cancel = threading.Event()
    with interrupts.interruptible(cancel):
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGHUP)
        assert cancel.is_set()  # stopped: nothing new is sent, in-flight answers recorded
        with pytest.raises(Abandoned):
            os.kill(os.getpid(), signal.SIGTERM)  # an operator's second signal still abandons
