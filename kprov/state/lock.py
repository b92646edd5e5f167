"""One writer at a time per state directory and per mapping file; a lock names its holder.

Each lock is an OS file lock (``flock``; ``msvcrt.locking`` on Windows: ``state.portable``) on
a file opened without following symlinks, so the kernel releases it when its holder dies, even
by kill -9: there are no stale locks to clean up by hand. The holder (pid, host, start,
command) is written into the lock file itself, for the exit-5 message of whoever finds it
taken.

The state directory's lock covers its journals; a second lock beside the mapping file covers
the mapping itself, so two runs with different state directories but the same ``--mapping``
never both write it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from kprov.errors import LockHeldError, StorageError
from kprov.state.files import UNCHANGED, ensure_private_dir, open_fd, storage_error
from kprov.state.portable import read_at, try_lock, write_at

LOCK_NAME = "kprov.lock"
POLL_SECONDS = 0.05


def mapping_lock_path(mapping_path: Path) -> Path:
    return mapping_path.with_name(mapping_path.name + ".lock")


class FileLock:
    """An exclusive flock on *path*, held by this object (not shared with other opens)."""

    def __init__(self, path: Path, *, guards: str) -> None:
        self.path = path
        self.guards = guards  # what the lock protects, for messages
        self._fd: int | None = None

    def acquire(self, *, timeout: float, holder: dict[str, object], deadline: float = 0) -> None:
        """Take the lock, polling until *deadline* (monotonic; default: now + *timeout*)."""
        fd = self._open()
        deadline = deadline or time.monotonic() + timeout
        try:
            while True:
                try:
                    if try_lock(fd):
                        break
                except OSError as exc:
                    raise storage_error(self.path, exc, doing="lock", after=UNCHANGED) from None
                if time.monotonic() >= deadline:
                    raise self._held(timeout) from None
                time.sleep(POLL_SECONDS)
            self._write_holder(fd, holder)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):  # the holder is gone; closing frees the lock anyway
            os.ftruncate(fd, 0)
        os.close(fd)

    def _open(self) -> int:
        try:
            return open_fd(self.path, os.O_RDWR | os.O_CREAT, doing="create the lock")
        except FileNotFoundError as exc:
            raise storage_error(self.path, exc, doing="create", after=UNCHANGED) from None

    def _write_holder(self, fd: int, holder: dict[str, object]) -> None:
        data = json.dumps(holder).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            write_at(fd, data, 0)
        except OSError as exc:
            raise storage_error(self.path, exc, doing="write", after=UNCHANGED) from None

    def holder_text(self) -> str:
        try:
            fd = open_fd(self.path, os.O_RDONLY, doing="read")
        except (OSError, StorageError):
            return "another kprov process"
        try:
            holder = json.loads(read_at(fd, 4096, 0).decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return "another kprov process"
        finally:
            os.close(fd)
        if not isinstance(holder, dict):
            return "another kprov process"
        state = f", state {holder['state_dir']}" if holder.get("state_dir") else ""
        return (
            f"kprov pid {holder.get('pid')} on {holder.get('host')} "
            f"(started {holder.get('started')}, running `{holder.get('command', '?')}`{state})"
        )

    def _held(self, timeout: float) -> LockHeldError:
        waited = f" after waiting {timeout:g} s" if timeout else ""
        return LockHeldError(
            f"{self.guards} is locked by {self.holder_text()}{waited}.",
            hint="Wait for that run to finish (or pass --lock-timeout SECONDS to wait); "
            "if that process is gone, the lock is already free: just rerun.",
        )


def current_holder(state_dir: Path) -> dict[str, object] | None:
    """Who holds the state lock now, as its holder wrote it (None: free, or unreadable).
    The file keeps its last holder's text only while the lock is held (released: truncated),
    and a holder killed with -9 leaves its text behind: check its pid is alive too."""
    try:
        fd = open_fd(state_dir / LOCK_NAME, os.O_RDONLY, doing="read")
    except (OSError, StorageError):
        return None
    try:
        holder = json.loads(read_at(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)
    return holder if isinstance(holder, dict) else None


class StateLock:
    """Context manager holding the state directory's lock (and the mapping's) for a command."""

    def __init__(
        self,
        state_dir: Path,
        *,
        timeout: float = 0.0,
        command: str = "",
        mapping_path: Path | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.timeout = timeout
        self.command = command
        self.mapping_path = mapping_path
        self._locks: list[FileLock] = []

    def __enter__(self) -> StateLock:
        holder: dict[str, object] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": self.command,
            "state_dir": str(self.state_dir),
        }
        ensure_private_dir(self.state_dir)
        wanted = [FileLock(self.state_dir / LOCK_NAME, guards=f"the state in {self.state_dir}")]
        if self.mapping_path is not None:
            ensure_private_dir(self.mapping_path.parent)
            wanted.append(
                FileLock(
                    mapping_lock_path(self.mapping_path),
                    guards=f"the mapping file {self.mapping_path}",
                )
            )
        deadline = time.monotonic() + self.timeout
        try:
            for lock in wanted:  # always state first, then mapping: no two runs deadlock
                lock.acquire(timeout=self.timeout, holder=holder, deadline=deadline)
                self._locks.append(lock)
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        while self._locks:
            self._locks.pop().release()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()
