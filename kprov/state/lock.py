"""One writer at a time per state directory, and a lock that names its holder.

The lock is an OS file lock (via ``filelock``), so the kernel releases it when its holder dies,
even by kill -9: there are no stale locks to clean up by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from kprov.errors import LockHeldError

LOCK_NAME = "kprov.lock"
HOLDER_NAME = "kprov.lock.json"


class StateLock:
    """Context manager holding the state directory's lock for a whole command."""

    def __init__(self, state_dir: Path, *, timeout: float = 0.0, command: str = "") -> None:
        self.state_dir = state_dir
        self.timeout = timeout
        self.command = command
        self._lock = FileLock(str(state_dir / LOCK_NAME), mode=0o600)

    def _holder_text(self) -> str:
        try:
            holder = json.loads((self.state_dir / HOLDER_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "another kprov process"
        return (
            f"kprov pid {holder.get('pid')} on {holder.get('host')} "
            f"(started {holder.get('started')}, running `{holder.get('command', '?')}`)"
        )

    def __enter__(self) -> StateLock:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout:
            waited = f" after waiting {self.timeout:g} s" if self.timeout else ""
            raise LockHeldError(
                f"the state in {self.state_dir} is locked by {self._holder_text()}{waited}.",
                hint="Wait for that run to finish (or pass --lock-timeout SECONDS to wait); "
                "if that process is gone, the lock is already free: just rerun.",
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": self.command,
        }
        path = self.state_dir / HOLDER_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(holder, handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            (self.state_dir / HOLDER_NAME).unlink()
        self._lock.release()
