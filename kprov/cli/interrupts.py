"""Signals during a run: the first Ctrl-C, SIGTERM or SIGHUP stops it cleanly, a second
Ctrl-C or SIGTERM abandons what is in flight (``interruptible``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from kprov.errors import ExitCode


@contextlib.contextmanager
def interruptible(cancel: threading.Event, terminals: Sequence[int] = ()) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM, or SIGHUP): send nothing new, let what is in flight finish and
    be recorded. A second Ctrl-C or SIGTERM: abandon what is in flight at once (the rerun
    recovers it, as after a kill -9: every answer already received is durable). A second
    SIGHUP never abandons: abandoned answers leave duplicate instances and registrations
    without their id, which no one at a hung-up terminal asked for.

    SIGHUP is what a closed ssh session sends: it ended the run with exit 129, no message and
    no log line. Now it stops the run like SIGTERM (exit 130, the --log-file line written);
    the terminal is gone, so what would have been printed on it goes to /dev/null instead of
    failing (*terminals*: the descriptors on a terminal, ``Environment.terminal_fds``, read
    when the command began: after a hang-up they fail). A SIGHUP that is ignored (``nohup
    kprov ...``) stays ignored: that was asked for.
    """
    stopping = False

    def handler(signum: int, _frame: Any) -> None:
        nonlocal stopping
        hung_up = signum == getattr(signal, "SIGHUP", None)
        if hung_up:
            _detach(terminals)
        if not stopping:
            stopping = True
            cancel.set()
            cause = "the terminal hung up (SIGHUP)" if hung_up else "stopping"
            _say(
                f"\nkprov: {cause}: no new request will be sent; waiting for those in flight "
                "(press Ctrl-C again to abandon them)\n"
            )
            return
        if hung_up:
            # A hang-up often comes twice (the terminal, then the shell passing it on), and no
            # one is there to ask for more: only an operator's Ctrl-C or SIGTERM abandons.
            return
        _say("\nkprov: abandoned the requests in flight; the rerun recovers them\n")
        os._exit(int(ExitCode.INTERRUPTED))

    previous: dict[signal.Signals, Any] = {}
    wanted = [signal.SIGINT, signal.SIGTERM]
    sighup = getattr(signal, "SIGHUP", None)  # not on Windows
    if sighup is not None and signal.getsignal(sighup) is not signal.SIG_IGN:
        wanted.append(sighup)
    for signum in wanted:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _detach(fds: Sequence[int]) -> None:
    """Point the (hung-up) terminal's descriptors at /dev/null, so the summary and the error
    written after a hang-up cannot fail the run (EIO) before its log line is written."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()
