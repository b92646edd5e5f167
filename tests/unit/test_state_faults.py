"""Local faults are clear errors (exit 9) naming the file, and nothing recorded is lost.

Faults are injected (os.write / os.fsync / os.open raising as the kernel would), and made real
where the machine allows: RLIMIT_FSIZE gives a real short write and EFBIG; a subprocess run as
an unprivileged user gives a real EACCES when the suite runs as root.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import ExitCode, StorageError
from kprov.state.local import open_local_state
from kprov.state.mapping import MappingEntry, MappingJournal
from kprov.state.registry import RegistrationRecord

UUID = "0b8e1f3c-1111-4222-8333-444455556666"
ROOT = Path(__file__).resolve().parents[2]


def entry(ext: str) -> MappingEntry:
    return MappingEntry(ext, UUID, "2026-01-01T00:00:00Z", "", "created")


def seeded(path: Path, ids: list[str]) -> MappingJournal:
    journal = MappingJournal(path)
    journal.append([entry(i) for i in ids])
    return journal


def on_file(path: Path, fault: Callable[..., Any], real: Callable[..., Any]) -> Callable[..., Any]:
    """Apply *fault* only to calls on *path*'s open file; every other fd works as usual."""
    inode = path.stat().st_ino

    def wrapped(fd: int, *args: Any) -> Any:
        try:
            mine = os.fstat(fd).st_ino == inode
        except OSError:
            mine = False
        return fault(fd, *args) if mine else real(fd, *args)

    return wrapped


def test_disk_full_mid_write_rolls_back_and_says_where_to_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.csv"
    journal = seeded(path, ["a", "b"])
    before = path.read_bytes()
    real_write = os.write
    calls = {"n": 0}

    def half_then_full(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(
                fd, bytes(data[: len(data) // 2])
            )  # a short write, as the kernel does
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", on_file(path, half_then_full, real_write))
    with pytest.raises(StorageError) as caught:
        journal.append([entry("c"), entry("d")])
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.STORAGE
    assert f"no space left to write {path}" in message
    assert "Free space on /" in message and "nothing recorded so far is lost" in message
    assert path.read_bytes() == before  # the half row is gone
    with pytest.raises(StorageError, match="no space left to write"):
        journal.append([entry("e")])  # nothing is written after a failed write; same cause
    monkeypatch.setattr(os, "write", real_write)
    journal.close()
    index = MappingJournal(path).load(repair=True)
    assert index.account_of == {"a": UUID, "b": UUID} and index.repairs == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EIO, "cannot write"),
        (errno.EFBIG, "cannot grow any further"),
        (errno.EROFS, "read-only filesystem"),
        (errno.EDQUOT, "no space left"),
    ],
)
def test_a_failed_fsync_reports_nothing_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, expected: str
) -> None:
    path = tmp_path / "m.csv"
    journal = seeded(path, ["a"])
    before = path.read_bytes()

    def refuse(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", on_file(path, refuse, os.fsync))
    with pytest.raises(StorageError, match=expected):
        journal.append([entry("b")])
    assert path.read_bytes() == before


def test_a_row_that_cannot_be_rolled_back_is_repaired_by_the_next_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.csv"
    journal = seeded(path, ["a"])
    real_write = os.write

    def torn(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[:7]))
        raise OSError(errno.EIO, "Input/output error")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "write", on_file(path, torn, real_write))
    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(StorageError):
        journal.append([entry("b")])
    with pytest.raises(StorageError, match="the next run repairs it"):
        journal.append([entry("c")])
    monkeypatch.undo()
    journal.close()
    assert MappingJournal(path).load().account_of == {"a": UUID}  # not misread meanwhile
    index = MappingJournal(path).load(repair=True)
    assert index.account_of == {"a": UUID} and "moved to" in index.repairs[0]


def test_the_index_shows_a_registration_only_once_it_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_local_state(tmp_path / "state", tmp_path / "state" / "mapping.csv") as state:
        registry = state.registry
        registry.record_instance_intent("k", "g", "Alg")  # creates the journals
        record = RegistrationRecord(UUID, UUID, "learner", UUID, "s1", "t")
        registry.record_registration(record)
        path = registry.registrations.path

        def refuse(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", on_file(path, refuse, os.fsync))
        other = RegistrationRecord(UUID, "1" + UUID[1:], "learner", "2" + UUID[1:], "s1", "t")
        with pytest.raises(StorageError):
            registry.record_registration(other)
        assert list(registry.registration_index.active.values()) == [record]


def test_a_read_only_state_dir_is_a_clear_error_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(state)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with (
        pytest.raises(StorageError, match="read-only filesystem") as caught,
        open_local_state(state, state / "mapping.csv"),
    ):
        pass
    assert str(state / "kprov.lock") in str(caught.value)
    assert "KPROV_STATE_DIR" in str(caught.value)


def test_an_unreadable_journal_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.csv"
    seeded(path, ["a"]).close()
    real_open = os.open

    def denied(target: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(target) == str(path):
            raise OSError(errno.EACCES, "Permission denied", str(target))
        return real_open(target, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(
        StorageError, match=re.escape(f"permission denied to read {path}")
    ) as caught:
        MappingJournal(path).load()
    assert "nothing was changed" in str(caught.value)


def run_python(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


def test_a_real_file_size_limit_gives_efbig_and_keeps_every_earlier_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    seeded(path, [f"s{i}" for i in range(20)]).close()
    before = path.read_bytes()
    limit = len(before) + 100  # room for one row and a half of the five
    child = run_python(
        f"""
        import resource, sys
        from pathlib import Path
        from kprov.errors import StorageError
        from kprov.state.mapping import MappingEntry, MappingJournal
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        journal = MappingJournal(Path({str(path)!r}))
        journal.load(repair=True)
        try:
            journal.append(
                [MappingEntry(f"n{{i}}", {UUID!r}, "2026-01-01T00:00:00Z") for i in range(5)]
            )
        except StorageError as exc:
            print(exc)
            sys.exit(9)
        """
    )
    assert child.returncode == 9, child.stderr
    assert "cannot grow any further" in child.stdout and str(path) in child.stdout
    assert "ulimit -f" in child.stdout and "Traceback" not in child.stderr
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_a_real_permission_denied_for_an_unprivileged_user() -> None:
    folder = Path(tempfile.mkdtemp(prefix="kprov-eacces-"))  # outside pytest's 0700 tree
    try:
        folder.chmod(0o755)
        state = folder / "state"
        with open_local_state(state, state / "mapping.csv") as local:
            local.journal.append([entry("a")])
        state.chmod(0o755)  # others may look in, but mapping.csv is root's and 0600
        for lock in ("kprov.lock", "mapping.csv.lock"):
            (state / lock).chmod(0o666)  # so the child gets as far as reading the mapping
        before = (state / "mapping.csv").read_bytes()
        child = run_python(
            f"""
            import os, sys
            from pathlib import Path
            from kprov.errors import KprovError
            from kprov.state.local import open_local_state
            os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody, from here on
            state = Path({str(state)!r})
            try:
                with open_local_state(state, state / "mapping.csv"):
                    pass
            except KprovError as exc:
                print(exc)
                sys.exit(int(exc.exit_code))
            """
        )
        assert child.returncode == 9, child.stdout + child.stderr
        assert f"permission denied to read {state / 'mapping.csv'}" in child.stdout
        assert "Traceback" not in child.stderr
        assert "Run kprov as the user who owns its state" in child.stdout
        assert (state / "mapping.csv").read_bytes() == before
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_group_commit_failure_in_a_real_subprocess_leaves_no_partial_row(tmp_path: Path) -> None:
    """Many threads, real short write at the file size limit: all or nothing per group."""
    path = tmp_path / "m.csv"
    seeded(path, ["a"]).close()
    before = path.read_bytes()
    limit = len(before) + 500
    child = run_python(
        f"""
        import resource, sys, threading
        from pathlib import Path
        from kprov.errors import StorageError
        from kprov.state.mapping import MappingEntry, MappingJournal
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        journal = MappingJournal(Path({str(path)!r}))
        journal.load(repair=True)
        ok, failed = [], []
        def work(n):
            try:
                journal.append([MappingEntry(f"t{{n}}", {UUID!r}, "2026-01-01T00:00:00Z")])
                ok.append(n)
            except StorageError:
                failed.append(n)
        threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(",".join(f"t{{n}}" for n in sorted(ok)))
        sys.exit(9 if failed else 0)
        """
    )
    assert child.returncode == 9, child.stderr
    reported = set(filter(None, child.stdout.strip().split(",")))
    index = MappingJournal(path).load(repair=True)
    assert index.repairs == []  # every failure was rolled back: no torn line left
    assert set(index.account_of) == reported | {"a"}  # durable exactly when reported so
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # (the limit applied to the child only)
