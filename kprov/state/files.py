"""Opening local files as precious: no symlinks, regular files only, private modes, clear errors.

kprov often runs as root from cron, so a symlink planted where a state file, a lock or a report
is expected could make it truncate or append to any file on the machine; every open here uses
O_NOFOLLOW (the last path component is never a link) and refuses anything but a regular file.
Files kprov creates are 0600, directories 0700. Any OS error becomes a ``StorageError`` (exit 9)
that names the file and says what to do, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from pathlib import Path
from typing import IO

from kprov.errors import StorageError
from kprov.state.portable import BINARY

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # 0 on Windows: a final symlink is refused by lstat
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # so a FIFO planted as a state file cannot hang us
# Windows has no mode bits for "others": its directories show 0o777 and are guarded by ACLs
# (a profile's data folder is private to its user), so only POSIX modes are judged.
POSIX_MODES = os.name != "nt"

KEPT = "nothing recorded so far is lost"
UNCHANGED = "nothing was changed"


def mount_point(path: Path) -> Path:
    """The mount point holding *path* (so an ENOSPC message can say where to free space)."""
    probe = Path(os.path.abspath(path))
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    while not os.path.ismount(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def storage_error(path: Path, exc: OSError, *, doing: str, after: str = KEPT) -> StorageError:
    """An OSError met while *doing* something to *path*, as advice: what happened, what to do."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        where = mount_point(path)
        return StorageError(
            f"no space left to {doing} {path} (disk or quota full on {where})",
            hint=f"Free space on {where}, then rerun: {after}.",
        )
    if code == errno.EFBIG:
        return StorageError(
            f"{path} cannot grow any further: the file size limit was reached "
            "(`ulimit -f`, or the largest file this filesystem allows)",
            hint=f"Raise the limit (`ulimit -f unlimited`) or move the state to another "
            f"filesystem, then rerun: {after}.",
        )
    if code == errno.EROFS:
        return StorageError(
            f"cannot {doing} {path}: it is on a read-only filesystem",
            hint=f"Remount it read-write, or point KPROV_STATE_DIR (and --mapping) at a writable "
            f"directory, then rerun: {after}.",
        )
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(
            f"permission denied to {doing} {path}",
            hint=f"Run kprov as the user who owns its state (see `ls -ld {path.parent}`), or fix "
            f"the permissions, then rerun: {after}.",
        )
    if code in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
        return symlink_refused(path)
    return StorageError(
        f"cannot {doing} {path}: {exc.strerror or exc}",
        hint=f"Check that disk and that file, then rerun: {after}.",
    )


def symlink_refused(path: Path) -> StorageError:
    return StorageError(
        f"{path} is a symbolic link: kprov never follows links for its state files, locks, "
        "reports or logs",
        hint=f"Replace the link by the file it points to, or name the real file; {UNCHANGED}.",
    )


def open_fd(path: Path, flags: int, *, doing: str, mode: int = 0o600) -> int:
    """``os.open`` without following a final symlink, refusing non-regular files.

    Raises FileNotFoundError untouched (callers decide what a missing file means); every other
    OSError becomes a StorageError naming *path*.
    """
    if not NOFOLLOW:
        refuse_non_regular(path)  # no O_NOFOLLOW here: look before opening
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | NONBLOCK | BINARY, mode)
    except FileNotFoundError:
        raise
    except OSError as exc:
        after = UNCHANGED if not flags & (os.O_WRONLY | os.O_RDWR) else KEPT
        raise storage_error(path, exc, doing=doing, after=after) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(
                f"{path} is not a regular file", hint=f"Name a plain file; {UNCHANGED}."
            )
        if NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private_dir(path: Path) -> None:
    """Create *path* (0700) if missing; refuse a directory other users may write to.

    A world-writable directory is refused even with the sticky bit: the sticky bit stops others
    deleting our files, not creating theirs first (a mapping, journal or lock planted there
    would be written by kprov, possibly as root). Group-writable directories are allowed: a
    shared operators' group is a deliberate choice.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = path.stat()
    except OSError as exc:
        raise storage_error(path, exc, doing="create the directory", after=UNCHANGED) from None
    if not stat.S_ISDIR(info.st_mode):
        raise StorageError(f"{path} is not a directory", hint=f"Name a directory; {UNCHANGED}.")
    if POSIX_MODES and info.st_mode & stat.S_IWOTH:
        raise StorageError(
            f"{path} is writable by every user (mode {stat.S_IMODE(info.st_mode):04o}): kprov "
            "keeps its state and locks only in a directory others cannot write",
            hint=f"Use a private directory (`chmod 700 {path}`, or point KPROV_STATE_DIR / "
            f"--mapping elsewhere); {UNCHANGED}.",
        )


def fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY | CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def refuse_non_regular(path: Path) -> None:
    """StorageError (exit 9) if *path* exists and is not a plain file (never followed)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise storage_error(path, exc, doing="inspect", after=UNCHANGED) from None
    if stat.S_ISLNK(info.st_mode):
        raise symlink_refused(path)
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"{path} is not a regular file", hint=f"Name a plain file; {UNCHANGED}.")


def create_private(path: Path, *, append: bool = False) -> IO[str]:
    """Open *path* for writing text (UTF-8, no newline translation), created 0600.

    For ``--report`` and ``--log-file``: never follows a symlink, refuses non-regular files,
    truncates unless *append*. An existing file keeps the mode its owner gave it. Errors are
    StorageError (exit 9) naming the file.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = open_fd(path, flags, doing="write")
    except FileNotFoundError as exc:  # the directory is missing
        raise storage_error(path, exc, doing="create", after=UNCHANGED) from None
    return os.fdopen(fd, "a" if append else "w", encoding="utf-8", newline="")


def write_private(path: Path, text: str, *, append: bool = False) -> None:
    """Write (or append) *text* to *path*, opened as ``create_private`` opens it; a full disk
    or any other OSError is a StorageError naming the file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = open_fd(path, flags, doing="write")
    except FileNotFoundError as exc:
        raise storage_error(path, exc, doing="create", after=UNCHANGED) from None
    try:
        view = memoryview(text.encode("utf-8"))
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise storage_error(path, exc, doing="write", after=KEPT) from None
    finally:
        os.close(fd)


def replace_private(path: Path, text: str, *, make_parent: bool = False, mode: int = 0o600) -> None:
    """Atomically replace *path* with *text* (0600): a reader sees the old file or the new
    one, never half of one. The temporary file has an unpredictable name, is created
    exclusively and never through a symlink; any OSError is a StorageError naming *path*.

    An existing *path* that is not a regular file (a link, ``/dev/null``, a directory) is
    refused, never replaced: as root that would destroy a device node. A missing folder is
    an error (a mistyped path), unless *make_parent* (kprov's own config folder). *mode*
    other than 0600 is for files other programs read (a metrics file: no secret in it).
    """
    import secrets

    refuse_non_regular(path)
    if make_parent:
        ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o600)
        try:
            if mode != 0o600 and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # exactly: a umask of 077 would hide it from its reader
            view = memoryview(text.encode("utf-8"))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(path, exc, doing="write", after=UNCHANGED) from None
    fsync_dir(path.parent)


class BoundedReader(io.RawIOBase):
    """The first *limit* bytes of a file, to read a journal without its torn last line."""

    def __init__(self, fd: int, limit: int) -> None:
        self._file = io.FileIO(fd, closefd=False)
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        got = self._file.readinto(memoryview(buffer)[:want]) or 0
        self._left -= got
        return got
