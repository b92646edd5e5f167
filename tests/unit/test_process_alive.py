"""`kprov history` calls an unfinished run *running* only while its process lives: one killed
and not yet reaped by its parent (a zombie) is dead, as one that is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from kprov.state.portable import _windows_process_alive, process_alive


def test_a_killed_process_is_dead_even_before_its_parent_reaps_it() -> None:
    assert process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(200):  # until the kernel has made it a zombie (never reaped here)
            if not process_alive(child.pid):
                break
            time.sleep(0.01)
        assert not process_alive(child.pid)
        assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie till now
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


class _Kernel32:
    """A stand-in for Windows' kernel32: processes by pid, each an exit code (259: running)."""

    def __init__(self, codes: dict[int, int]) -> None:
        self.codes, self.closed = codes, 0

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int:
        return pid if pid in self.codes else 0

    def GetExitCodeProcess(self, handle: int, code: Any) -> bool:
        if self.codes[handle] < 0:
            return False  # the call failed: nothing is known of its end
        code._obj.value = self.codes[handle]
        return True

    def CloseHandle(self, handle: int) -> None:
        self.closed += 1


def test_windows_asks_the_process_its_exit_code_and_never_sends_a_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Windows has no signal 0: os.kill(pid, 0) sends CTRL_C_EVENT, which could interrupt the
    run `kprov history` asks about. Its process is opened and its exit code read instead."""
    from kprov.state import portable

    dll = _Kernel32({40: 259, 41: 0})
    denied = iter([5, 2])  # the last error after a failed OpenProcess: access denied, no such
    alive = lambda pid: _windows_process_alive(pid, dll, lambda: next(denied))  # noqa: E731
    assert alive(40) and not alive(41) and dll.closed == 2
    assert alive(42) and not alive(43)  # another user's process exists; a missing one does not
    unknown = _Kernel32({44: -1})
    assert _windows_process_alive(44, unknown, lambda: 0) and unknown.closed == 1  # say running

    def no_signal(*_args: object) -> None:
        raise AssertionError("os.kill on Windows")

    monkeypatch.setattr(portable.os, "name", "nt")
    monkeypatch.setattr(portable.os, "kill", no_signal)
    monkeypatch.setattr(portable, "_windows_process_alive", lambda pid: pid == 40)
    assert portable.process_alive(40) and not portable.process_alive(41)
    assert not portable.process_alive(0) and not portable.process_alive(-1)


def test_a_process_of_another_user_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    from kprov.state import portable

    def refused(pid: int, signal_number: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(portable.os, "kill", refused)
    assert portable.process_alive(1)
