"""A roster on standard input: refused as soon as it shows it is not one, even if it never ends."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest

from kprov.errors import ExitCode, InputError
from kprov.rosters import Inputs, RosterOptions, check_rosters, load_roster

STDIN = Path("-")
TOO_MUCH = 64 << 20  # a test fails here instead of filling the disk


class Endless(io.RawIOBase):
    """Standard input that never ends: *pattern* over and over (or seeded random bytes)."""

    def __init__(self, pattern: bytes | None, head: bytes = b"") -> None:
        self.pattern = pattern
        self.head = head
        self.given = 0
        self.random = random.Random(7)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        assert self.given < TOO_MUCH, "an endless input was read on and on"
        if self.given < len(self.head):
            data = self.head[self.given : self.given + size]
        elif self.pattern is None:
            data = self.random.randbytes(size)
        else:
            data = (self.pattern * (size // len(self.pattern) + 1))[:size]
        buffer[: len(data)] = data
        self.given += len(data)
        return len(data)


class FakeStdin:
    def __init__(self, raw: io.RawIOBase | io.BytesIO) -> None:
        self.buffer = io.BufferedReader(raw)  # a BytesIO reads as raw


def feed(monkeypatch: pytest.MonkeyPatch, raw: io.RawIOBase | io.BytesIO) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(raw))


def refused(options: RosterOptions | None = None) -> list[str]:
    """The problems of reading standard input; how promptly is counted in bytes read (each
    test's ``source.given``), which no load on the machine changes."""
    with pytest.raises(InputError) as caught:
        load_roster([STDIN], options)
    assert caught.value.exit_code == ExitCode.INPUT
    return caught.value.problems


def test_endless_zeros_are_refused_as_the_same_bytes_in_a_file_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "zeros.csv"
    path.write_bytes(bytes(3 << 20))
    with pytest.raises(InputError) as from_file:
        load_roster([path])
    source = Endless(b"\x00")
    feed(monkeypatch, source)
    on_stdin = refused()
    # a line of NULs that never ends is, first, a line that never ends
    assert on_stdin == [
        "<stdin>:1: line is longer than 1024 KiB; the file is probably not a roster export "
        "(or lacks line breaks)"
    ]
    assert from_file.value.problems == [p.replace("<stdin>", str(path)) for p in on_stdin]
    assert source.given <= 2 << 20  # a line's worth, not the disk


def test_a_nul_is_named_once_its_line_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Endless(b"\x00\n", head=b"external_user_id\nstu-1\n")
    feed(monkeypatch, source)
    assert refused() == [
        "<stdin>:3:1: line contains a NUL byte; the file is binary, or UTF-16 without a BOM: "
        "save it as UTF-8 CSV, or pass --encoding utf-16-le (in a manifest: "
        "`encoding: utf-16-le` on that roster's entry)"
    ]
    assert source.given <= 1 << 20


def test_endless_random_bytes_are_refused_promptly(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Endless(None)
    feed(monkeypatch, source)
    [problem] = refused()
    assert problem.startswith("<stdin>:") and "line contains a NUL byte" in problem
    assert source.given <= 1 << 20


def test_an_endless_line_is_refused_past_the_line_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Endless(b"x", head=b"external_user_id\r\nstu-1\rstu-2\r\n")
    feed(monkeypatch, source)
    assert refused() == [
        "<stdin>:4: line is longer than 1024 KiB; the file is probably not a roster export "
        "(or lacks line breaks)"
    ]
    assert source.given <= 2 << 20


def test_endless_good_lines_stop_at_the_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Inputs, "max_stdin_bytes", 4 << 20)
    source = Endless(b"stu-1\n", head=b"external_user_id\n")
    feed(monkeypatch, source)
    assert refused() == [
        "<stdin>: standard input is over 4 MiB, the most kprov reads from a pipe (a regular "
        "file has no such bound): save the roster to a file and pass its path"
    ]
    assert source.given <= 5 << 20


def test_the_size_cap_is_a_gibibyte() -> None:
    assert Inputs.max_stdin_bytes == 1 << 30


def test_endless_yaml_stops_at_the_yaml_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Endless(b"  - stu-1\n", head=b"users:\n")
    feed(monkeypatch, source)
    assert refused(RosterOptions(format="yaml")) == [
        "<stdin>: standard input is over 20 MiB; YAML inputs are limited to that: use CSV for "
        "large rosters"
    ]
    assert source.given <= 21 << 20


def test_check_rosters_refuses_endless_input_too(monkeypatch: pytest.MonkeyPatch) -> None:
    source = Endless(b"\x00")
    feed(monkeypatch, source)
    with pytest.raises(InputError, match="1 problem"):
        check_rosters([STDIN])
    assert source.given <= 2 << 20


def test_problems_on_stdin_read_as_they_would_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = b"external_user_id\rstu-1\r\nstu-\x002\nstu-3\n"
    path = tmp_path / "r.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as from_file:
        load_roster([path])
    feed(monkeypatch, io.BytesIO(data))
    on_stdin = refused()
    assert on_stdin == [p.replace(str(path), "<stdin>") for p in from_file.value.problems]
    assert on_stdin[0].startswith("<stdin>:3:5: line contains a NUL byte")


def test_utf16_on_stdin_with_its_nul_bytes_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "external_user_id,role\r\nstu-1,learner\r\nt-1,teacher\r\n"
    for data, encoding in (
        (text.encode("utf-16"), None),  # with a BOM
        (text.encode("utf-16-le"), None),  # detected by its NUL bytes
        (text.encode("utf-16-le"), "utf-16-le"),
    ):
        feed(monkeypatch, io.BytesIO(data))
        people = load_roster([STDIN], RosterOptions(encoding=encoding)).people
        assert [(p.external_id, p.role, p.origin.line) for p in people] == [
            ("stu-1", "learner", 2),
            ("t-1", "instructor", 3),
        ]


def test_a_roster_trickling_in_a_byte_at_a_time_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if not self.data:
                return 0
            buffer[:1], self.data = self.data[:1], self.data[1:]
            return 1

    text = "external_user_id\nstu-1\nstu-2\n"
    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": Trickle(text.encode("utf-16"))}))
    people = load_roster([STDIN]).people
    assert [p.external_id for p in people] == ["stu-1", "stu-2"]
