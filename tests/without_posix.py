"""Run kprov as on Windows: `python -m tests.without_posix [hold STATE_DIR | KPROV ARGS...]`.

What Windows lacks is hidden before kprov is imported: the POSIX-only modules (fcntl, termios,
pwd, grp, resource) cannot be imported, and os has no pread/pwrite, O_NOFOLLOW, O_NONBLOCK,
O_CLOEXEC or O_NOCTTY. In their place, kprov's locks get a stand-in for `msvcrt.locking`
built on POSIX record locks: like Windows' locks they cover byte ranges from the current
position, fail at once with EACCES when held (LK_NBLCK), and are released by the OS when
their process dies. (It is given to kprov.state.portable only: a global `msvcrt` module would
make the standard library believe it runs on Windows.)

`hold STATE_DIR` takes the state lock, prints "held" and waits to be killed (kill -9);
`try STATE_DIR` tries to take it for 0.2 s, prints the error (exit 5, holder named) on one
line, then waits up to 30 s for it and prints "held". Only the state layer is imported: a
process costs a tenth of the whole CLI's.
"""

from __future__ import annotations

import errno
import fcntl as _posix_fcntl
import os
import sys
import types

HIDDEN_MODULES = ("fcntl", "termios", "pwd", "grp", "resource")
HIDDEN_OS = ("pread", "pwrite", "O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY")


def _msvcrt_stand_in() -> types.ModuleType:
    module = types.ModuleType("msvcrt")
    module.LK_UNLCK, module.LK_NBLCK = 0, 2  # type: ignore[attr-defined]

    def locking(fd: int, mode: int, nbytes: int) -> None:
        if mode == module.LK_UNLCK:
            _posix_fcntl.lockf(fd, _posix_fcntl.LOCK_UN, nbytes, 0, os.SEEK_CUR)
            return
        try:
            _posix_fcntl.lockf(
                fd, _posix_fcntl.LOCK_EX | _posix_fcntl.LOCK_NB, nbytes, 0, os.SEEK_CUR
            )
        except OSError as exc:
            raise PermissionError(errno.EACCES, "Permission denied") from exc

    module.locking = locking  # type: ignore[attr-defined]
    return module


def look_like_windows() -> None:
    for name in HIDDEN_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # import now raises ImportError
    for name in HIDDEN_OS:
        if hasattr(os, name):
            delattr(os, name)
    import kprov.state.portable as portable

    assert portable.fcntl is None and portable.msvcrt is None
    portable.msvcrt = _msvcrt_stand_in()


def main(argv: list[str]) -> int:
    look_like_windows()
    if argv[:1] in (["hold"], ["try"]):
        import time
        from pathlib import Path

        from kprov.errors import KprovError
        from kprov.state.lock import StateLock

        if argv[0] == "try":
            try:
                with StateLock(Path(argv[1]), timeout=0.2):
                    pass
            except KprovError as error:
                print(f"{int(error.exit_code)}: {error.message}", flush=True)
        with StateLock(Path(argv[1]), command="kprov sync", timeout=30):
            print("held", flush=True)
            time.sleep(60 if argv[0] == "hold" else 0)
        return 0
    from kprov.cli.main import run

    sys.argv = ["kprov", *argv]
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
