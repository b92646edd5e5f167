"""The few OS calls the state layer needs that POSIX and Windows spell differently.

kprov runs from cron and from the Windows Task Scheduler alike, so nothing on the import path
of a state command may need a POSIX-only module. Locks are ``flock`` where ``fcntl`` exists
and ``msvcrt.locking`` elsewhere; both are released by the OS when their holder dies (kill -9,
Task Manager), so no stale lock is ever left. Windows' byte-range locks are mandatory (a
locked byte cannot even be read), so the lock sits on one byte far past the end of the lock
file, and the holder written at its start stays readable to whoever finds it taken.
(filelock, already a dependency, locks byte 0 on Windows and truncates the file on opening:
the holder could not be kept there.) Reads and writes at an offset are ``pread``/``pwrite``
where they exist, else a seek that is undone, on descriptors never shared between threads.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

fcntl: ModuleType | None
msvcrt: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # POSIX
    msvcrt = None

BINARY = getattr(os, "O_BINARY", 0)  # Windows opens in text mode unless told otherwise
LOCKED_BYTE = 1 << 30  # msvcrt: the byte locked, far past the holder's text
_HELD = {errno.EACCES, errno.EAGAIN, getattr(errno, "EDEADLOCK", errno.EDEADLK), errno.EDEADLK}


class NoLocking(OSError):
    """This platform offers neither flock nor msvcrt.locking."""


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on *fd* without waiting; False when another process holds it.
    Other OSErrors propagate (the caller names the file)."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    if msvcrt is None:
        raise NoLocking(errno.ENOSYS, "no file locking on this platform (neither fcntl nor msvcrt)")
    where = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, LOCKED_BYTE, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    finally:
        os.lseek(fd, where, os.SEEK_SET)
    return True


def unlock(fd: int) -> None:
    """Release the lock taken by ``try_lock`` (closing *fd* releases it too)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    elif msvcrt is not None:
        where = os.lseek(fd, 0, os.SEEK_CUR)
        os.lseek(fd, LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.lseek(fd, where, os.SEEK_SET)


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``os.pread``: up to *size* bytes at *offset*; the file position is left as it was."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    where = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)
    finally:
        os.lseek(fd, where, os.SEEK_SET)


def write_at(fd: int, data: bytes, offset: int) -> None:
    """``os.pwrite`` of all of *data* at *offset*; the file position is left as it was."""
    view = memoryview(data)
    if hasattr(os, "pwrite"):
        while view:
            view = view[os.pwrite(fd, view, offset + len(data) - len(view)) :]
        return
    where = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.lseek(fd, where, os.SEEK_SET)


def process_alive(pid: int) -> bool:
    """Whether process *pid* runs on this host. POSIX: ``kill(pid, 0)``, where a process of
    another user (EPERM) lives, and one killed but not yet reaped by its parent (a zombie: a
    container whose first process reaps nobody keeps them) is dead where /proc says so.
    Windows has no signal 0 (``os.kill(pid, 0)`` sends CTRL_C_EVENT to a console group: it
    could interrupt the very run asked about), so its process is opened and its exit code
    read instead."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's: it exists
    except (OSError, OverflowError):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: kill(0) is all there is
    return state not in (b"Z", b"X")


_STILL_ACTIVE, _ACCESS_DENIED, _QUERY_LIMITED = 259, 5, 0x1000


def _windows_process_alive(
    pid: int, dll: Any = None, last_error: Callable[[], int] | None = None
) -> bool:
    """OpenProcess and GetExitCodeProcess (STILL_ACTIVE while it runs); a process that may
    not be opened (access denied) exists. *dll*, *last_error*: kernel32 and its last error
    (stand-ins in a test: this machine has neither)."""
    import ctypes

    if dll is None:
        dll = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)  # noqa: B009
        last_error = getattr(ctypes, "get_last_error")  # noqa: B009  (Windows only)
    handle = dll.OpenProcess(_QUERY_LIMITED, False, pid)
    if not handle:
        return last_error is not None and last_error() == _ACCESS_DENIED
    try:
        code = ctypes.c_ulong(0)
        if not dll.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # unknown: say it runs (history then says running, never "ended")
        return code.value == _STILL_ACTIVE
    finally:
        dll.CloseHandle(handle)
