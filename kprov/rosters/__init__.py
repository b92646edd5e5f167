"""Roster readers (CSV in any dialect, YAML, OneRoster, SDS, Clever, Apple School Manager,
Canvas) and validation, streaming.

Every problem names file:line[:column]. Rows are checked as they stream; people are kept
only once the input can be accepted, so a large roster that will be refused never costs
more than the check itself, and `check_rosters` checks ten million rows in a few hundred MB.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kprov.errors import InputError
from kprov.gc_pause import gc_paused
from kprov.rosters.bundle import is_bundle
from kprov.rosters.collect import Collector, DuplicateNamer
from kprov.rosters.csv_reader import DEFAULT_ID_COLUMN, read_roster_csv
from kprov.rosters.csv_table import CsvTable, parse_delimiter
from kprov.rosters.csv_whole import read_whole
from kprov.rosters.encodings import check_encoding
from kprov.rosters.formats import read_bundle
from kprov.rosters.model import Person, Problem, Roster
from kprov.rosters.spool import MAX_STDIN_BYTES, spool
from kprov.rosters.text import STDIN_NAME, Problems, TextOptions, open_regular

if TYPE_CHECKING:  # bundles and YAML are read by modules loaded when one is given
    from kprov.rosters.oneroster import BundleInfo

MAX_SHOWN_PROBLEMS = 50
FORMATS = ("auto", "csv", "yaml")
# Inputs up to this size are read once, people kept as they stream (and dropped at the first
# problem); larger ones are checked first (nothing kept), so that a refusal never costs the
# memory of the people. People are kept by column (~21 bytes a row, ``rosters.people``): a
# 256 MiB roster of ten million rows costs ~210 MB, and a statewide one is read once.
KEEP_IN_FIRST_PASS = 256 << 20
STDIN_LABEL = "<stdin>"

__all__ = [
    "FORMATS",
    "Person",
    "Problem",
    "Roster",
    "RosterCheck",
    "RosterOptions",
    "check_rosters",
    "load_roster",
    "problems_error",
    "read_bundle",
]


@dataclass(frozen=True)
class RosterOptions:
    id_column: str = DEFAULT_ID_COLUMN
    hash_key: bytes | None = None  # set by --hash-ids
    delimiter: str | None = None  # --delimiter (None: Excel's sep= line, else sniffed)
    encoding: str | None = None  # --encoding (None: the BOM's, else UTF-8)
    format: str = "auto"  # --format: auto (by suffix; `-` is CSV), csv or yaml
    instance_column: str | None = None  # --instance-column (None: `instance`, if any)
    role_column: str | None = None  # --role-column (None: `role`, if any)
    id_prefix: str = ""  # a manifest entry's `id_prefix:`: namespaces the source's ids
    ta_as_instructor: bool = False  # Canvas `ta` enrollments as instructors

    def text(self) -> TextOptions:
        return TextOptions(self.encoding, self.delimiter)


def checked_options(options: RosterOptions) -> RosterOptions:
    """The options with --delimiter and --encoding validated (InputError naming the fix)."""
    try:
        delimiter = parse_delimiter(options.delimiter) if options.delimiter else None
        encoding = check_encoding(options.encoding) if options.encoding else None
    except (ValueError, LookupError) as exc:
        raise InputError(str(exc.args[0])) from None
    if options.format not in FORMATS:
        raise InputError(f"--format {options.format!r}: use one of {', '.join(FORMATS)}")
    for flag, named in (("--instance-column", options.instance_column),
                        ("--role-column", options.role_column)):  # fmt: skip
        if named is not None and not named.strip():
            raise InputError(f"{flag} is empty: name a column")
    return replace(options, delimiter=delimiter, encoding=encoding)


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count:,} bytes"


class Inputs:
    """The inputs of one run; standard input is copied to a temporary file on first use, so
    it can be read again like any file (to name the lines of a duplicate). The copy is
    checked as it is made (InputError at the first NUL byte, overlong line, or past
    ``max_stdin_bytes``): standard input may never end, a file always does."""

    max_stdin_bytes = MAX_STDIN_BYTES

    def __init__(self, options: RosterOptions | None = None) -> None:
        self._options = options or RosterOptions()
        self._stdin: IO[bytes] | None = None
        self._refused: InputError | None = None

    def stdin(self) -> IO[bytes]:
        if self._refused is not None:
            raise self._refused
        if self._stdin is None:
            self._stdin = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            problem = self._spool(self._stdin)
            if problem is not None:
                self._refused = problems_error([problem])
                raise self._refused
        self._stdin.seek(0)
        return os.fdopen(os.dup(self._stdin.fileno()), "rb")

    def _spool(self, target: IO[bytes]) -> Problem | None:
        if self._options.format == "yaml":
            from kprov.rosters.yaml_reader import MAX_YAML_BYTES

            limit = MAX_YAML_BYTES
            too_big = (
                f"standard input is over {limit >> 20} MiB; YAML inputs are limited to that: "
                "use CSV for large rosters"
            )
        else:
            limit = self.max_stdin_bytes
            too_big = (
                f"standard input is over {_size(limit)}, the most kprov reads from a pipe "
                "(a regular file has no such bound): save the roster to a file and pass its path"
            )
        return spool(
            sys.stdin.buffer,
            target,
            name=STDIN_LABEL,
            encoding=self._options.encoding,
            max_bytes=limit,
            too_big=too_big,
            check_lines=self._options.format != "yaml",
        )

    def stdin_size(self) -> int:
        with self.stdin() as stream:
            return os.fstat(stream.fileno()).st_size

    def close(self) -> None:
        if self._stdin is not None:
            self._stdin.close()


def read_input(
    path: Path,
    collector: Collector,
    options: RosterOptions,
    inputs: Inputs,
) -> BundleInfo | None:
    """Read one roster input into *collector*; a bundle's info when it is a bundle."""
    name = str(path)
    is_stdin = name == STDIN_NAME
    collector.id_prefix = options.id_prefix
    try:
        if not is_stdin and options.format == "auto" and is_bundle(path):
            return read_bundle(path, collector, options)
        _read_file(path, collector, options, inputs)
    finally:
        collector.id_prefix = ""
    return None


def _read_file(path: Path, collector: Collector, options: RosterOptions, inputs: Inputs) -> None:
    name = str(path)
    is_stdin = name == STDIN_NAME
    with ExitStack() as stack:
        if is_stdin:
            stream = stack.enter_context(inputs.stdin())
        else:
            opened = open_regular(path)  # before the suffix: /dev/zero is a device, not a type
            if isinstance(opened, str):
                collector.problems.append(Problem(name, None, opened))
                return
            stream = stack.enter_context(opened)
        fmt = options.format
        if fmt == "auto":
            suffix = "" if is_stdin else path.suffix.lower()
            if suffix in (".yaml", ".yml"):
                fmt = "yaml"
            elif is_stdin or suffix in (".csv", ".txt", ".tsv"):
                fmt = "csv"
            else:
                collector.problems.append(
                    Problem(
                        name,
                        None,
                        f"unknown roster type {suffix or '(no extension)'!r}; use .csv/.txt/.tsv, "
                        ".yaml/.yml, a roster bundle's directory or .zip, or pass --format csv "
                        "(in a manifest: rename the file to .csv)",
                    )
                )
                return
        label = STDIN_LABEL if is_stdin else name
        if fmt == "yaml":
            from kprov.rosters.yaml_reader import read_roster_yaml

            read_roster_yaml(path, collector, stream, label)
        else:
            columns = (options.id_column, options.role_column, options.instance_column)
            if (  # a small plain file: read whole
                not is_stdin
                and options.encoding is None
                and read_whole(stream, label, collector, options.delimiter, columns)
            ):
                return
            table = CsvTable(label, stream, collector.problems, options.text())
            read_roster_csv(
                table,
                collector,
                id_column=options.id_column,
                instance_column=options.instance_column,
                role_column=options.role_column,
            )


def problems_error(problems: Sequence[Problem], what: str = "roster") -> InputError:
    total = problems.total if isinstance(problems, Problems) else len(problems)
    ordered = sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
    shown = [str(p) for p in ordered[:MAX_SHOWN_PROBLEMS]]
    if total > MAX_SHOWN_PROBLEMS:
        shown.append(f"... and {total - MAX_SHOWN_PROBLEMS:,} more")
    return InputError(
        f"{total:,} problem(s) in the {what}; nothing was sent:",
        problems=shown,
        hint="Fix each problem listed (it names its file:line:column), then run the same "
        "command again.",
    )


def input_bytes(paths: Sequence[Path], inputs: Inputs | None = None) -> int:
    """How many bytes the inputs hold once inflated (a directory: its files; a zip: its
    members; standard input: once copied aside), to choose between one pass and two."""
    total = 0
    for path in paths:
        try:
            if str(path) == STDIN_NAME:
                total += inputs.stdin_size() if inputs is not None else 0
                continue
            found = path.stat()  # one look a file (a manifest names 4,000 of them)
            if stat.S_ISDIR(found.st_mode):
                total += sum(p.stat().st_size for p in path.iterdir() if p.is_file())
            elif not stat.S_ISREG(found.st_mode):
                continue
            elif path.suffix.lower() == ".zip":
                with zipfile.ZipFile(path) as archive:
                    total += sum(i.file_size for i in archive.infolist())
            else:
                total += found.st_size
        except (OSError, zipfile.BadZipFile):
            continue  # reported when it is read
    return total


Reader = Callable[[Collector, Inputs], None]


def scan_into(
    read: Reader, inputs: Inputs, problems: list[Problem], *, keep: bool, hash_key: bytes | None
) -> tuple[Roster, int]:
    """One pass of *read*, its problems added to *problems*; duplicates are named by a second
    look (the people kept, or a second reading). Returns the roster (its people only if
    *keep* and nothing was wrong) and how many people were seen."""
    roster = Roster()
    collector = Collector(problems, roster, keep=keep, hash_key=hash_key)
    with gc_paused():
        read(collector, inputs)
    repeated = collector.duplicated_digests()
    collector.release()
    if repeated:
        namer = DuplicateNamer(repeated, problems, hashed=hash_key is not None)
        if collector.still_keeping():  # nothing else is wrong: the people are all here
            namer.see_people(roster.people)
        else:
            again = Collector(Problems(), Roster(), keep=False, hash_key=hash_key)
            again.naming = namer
            read(again, inputs)
    if problems:
        roster.people.clear()
    return roster, collector.rows


def scan(
    read: Reader, inputs: Inputs, *, keep: bool, hash_key: bytes | None, what: str
) -> tuple[Roster, int]:
    """``scan_into`` a fresh problem list; InputError listing them, if any."""
    problems = Problems()
    roster, rows = scan_into(read, inputs, problems, keep=keep, hash_key=hash_key)
    if problems:
        raise problems_error(problems, what)
    return roster, rows


@contextmanager
def open_inputs(options: RosterOptions | None = None) -> Iterator[Inputs]:
    inputs = Inputs(options)
    try:
        yield inputs
    finally:
        inputs.close()


@dataclass(frozen=True)
class RosterCheck:
    """What a streaming check found in rosters it accepted (people are not kept)."""

    people: int
    skipped: int
    removals: int
    classes: int
    complete: bool


def _reader(paths: Sequence[Path], options: RosterOptions) -> Reader:
    def read(collector: Collector, inputs: Inputs) -> None:
        for path in paths:
            read_input(path, collector, options, inputs)

    return read


def check_rosters(paths: Sequence[Path], options: RosterOptions | None = None) -> RosterCheck:
    """Validate rosters streaming, keeping no people: InputError listing every problem, or
    what was found. Memory grows by 8 bytes a row, not by the people."""
    options = checked_options(options or RosterOptions())
    with open_inputs(options) as inputs:
        roster, rows = scan(
            _reader(paths, options), inputs, keep=False, hash_key=None, what="roster"
        )
    return RosterCheck(
        people=rows,
        skipped=len(roster.skipped_rows),
        removals=len(roster.removals),
        classes=len(roster.classes),
        complete=roster.complete,
    )


def load_roster(paths: Sequence[Path], options: RosterOptions | None = None) -> Roster:
    """Read and validate every file; raise InputError listing every problem, or return people."""
    options = checked_options(options or RosterOptions())
    read = _reader(paths, options)
    with open_inputs(options) as inputs:
        if input_bytes(paths, inputs) > KEEP_IN_FIRST_PASS:
            scan(read, inputs, keep=False, hash_key=None, what="roster")  # refuse cheaply
        roster, _rows = scan(read, inputs, keep=True, hash_key=options.hash_key, what="roster")
        return roster
