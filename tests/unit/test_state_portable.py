"""The state layer's OS calls where POSIX ones are missing (Windows): offsets and locks."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from kprov.state import portable


def test_reads_and_writes_at_an_offset_leave_the_position_alone_without_pread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pread")
    monkeypatch.delattr(os, "pwrite")
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"header\nrow\n")
        os.lseek(fd, 3, os.SEEK_SET)
        portable.write_at(fd, b"ROW", 7)
        assert portable.read_at(fd, 4, 7) == b"ROW\n"
        assert os.lseek(fd, 0, os.SEEK_CUR) == 3  # as pread/pwrite leave it
        assert os.read(fd, 3) == b"der"
    finally:
        os.close(fd)


def test_without_fcntl_the_lock_is_one_byte_far_past_the_holder_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, int]] = []
    held = {"now": False}

    def locking(fd: int, mode: int, nbytes: int) -> None:
        calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), nbytes))
        if mode == 2 and held["now"]:
            raise PermissionError(13, "locked")

    stand_in = types.SimpleNamespace(LK_UNLCK=0, LK_NBLCK=2, locking=locking)
    monkeypatch.setattr(portable, "fcntl", None)
    monkeypatch.setattr(portable, "msvcrt", stand_in)
    fd = os.open(tmp_path / "kprov.lock", os.O_RDWR | os.O_CREAT)
    try:
        assert portable.try_lock(fd) is True
        held["now"] = True
        assert portable.try_lock(fd) is False  # EACCES: another process holds it
        portable.unlock(fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
    finally:
        os.close(fd)
    far = portable.LOCKED_BYTE
    assert calls == [(2, far, 1), (2, far, 1), (0, far, 1)]


def test_a_platform_without_any_file_locking_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(portable, "fcntl", None)
    monkeypatch.setattr(portable, "msvcrt", None)
    fd = os.open(tmp_path / "kprov.lock", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(portable.NoLocking, match="no file locking on this platform"):
            portable.try_lock(fd)
    finally:
        os.close(fd)


def test_mode_bits_are_judged_on_posix_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows shows every directory as 0o777 (ACLs guard it): refusing that would refuse all."""
    from kprov.errors import StorageError
    from kprov.state import files

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(StorageError, match="writable by every user"):
        files.ensure_private_dir(shared)
    monkeypatch.setattr(files, "POSIX_MODES", False)
    files.ensure_private_dir(shared)
