"""Roster bundles: a directory or a .zip of CSV files (OneRoster 1.1/1.2, Microsoft SDS,
Clever, Apple School Manager, Canvas SIS import), recognised by their file names.

Zip members are read in place, never extracted. A member naming a path outside the bundle is
refused, and so is one whose declared size or compression ratio says it would inflate without
bound (a zip bomb), before a byte of it is inflated; a member whose real size exceeds what it
declared fails its check and is reported as damaged.
"""

from __future__ import annotations

import zipfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from kprov.rosters.csv_table import CsvTable
from kprov.rosters.model import Problem
from kprov.rosters.text import TextOptions, open_regular

FILE_SUFFIXES = (".csv", ".txt", ".tsv", ".yaml", ".yml")
MAX_MEMBER_BYTES = 2 << 30  # 2 GiB inflated: far beyond any district's enrollments.csv
MAX_RATIO = 200  # real CSV deflates 5-30x; a bomb, ~1000x
RATIO_FLOOR = 1 << 20  # the ratio cap applies to members inflating past 1 MiB
MAX_MEMBERS = 10_000

SDS_V1_FILES = (
    "school.csv",
    "section.csv",
    "student.csv",
    "teacher.csv",
    "studentenrollment.csv",
    "teacherroster.csv",
)
ONEROSTER_FILES = ("classes.csv", "orgs.csv", "academicsessions.csv", "demographics.csv")
ASM_FILES = ("locations.csv", "staff.csv", "rosters.csv")  # Apple School Manager
CLEVER_FILES = ("schools.csv", "teachers.csv", "students.csv")  # ASM's students.csv: above
CANVAS_FILES = ("terms.csv", "sections.csv", "accounts.csv", "xlists.csv")
SHARED_FILES = ("users.csv", "enrollments.csv", "courses.csv")  # OneRoster or Canvas


def is_bundle(path: Path) -> bool:
    """A .zip, or a directory (one named like a file, roster.csv, is a mistake: not a bundle)."""
    suffix = path.suffix.lower()
    return suffix == ".zip" or (suffix not in FILE_SUFFIXES and path.is_dir())


def _unsafe_member(name: str) -> bool:
    pure = PurePosixPath(name.replace("\\", "/"))
    return pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":")


def _ignored_member(name: str) -> bool:
    """macOS resource forks and folders that zip tools add; never roster data."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return "__MACOSX" in pure.parts or pure.name.startswith("._")


@dataclass
class Bundle:
    """The members of one bundle by lower-case file name, opened on demand."""

    path: Path
    problems: list[Problem]
    stack: ExitStack
    members: dict[str, str] = field(default_factory=dict)  # lower-case name -> name in bundle
    _zip: zipfile.ZipFile | None = None
    _infos: dict[str, zipfile.ZipInfo] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path)

    def problem(self, message: str, member: str | None = None, line: int | None = None) -> None:
        where = self.label(member) if member else self.name
        self.problems.append(Problem(where, line, message))

    def label(self, member: str) -> str:
        """How messages name a member: ``bundle.zip!users.csv``."""
        return f"{self.name}!{self.members.get(member.lower(), member)}"

    def has(self, member: str) -> bool:
        return member.lower() in self.members

    def kind(self) -> str | None:
        """oneroster, sds-v1, sds-v2.1, clever, asm or canvas, from the file set (and, for the
        names OneRoster and Canvas share, the header of one of them); None if none of them."""
        names = set(self.members)
        if "manifest.csv" in names:
            return "oneroster"
        if names & set(ASM_FILES):
            return "asm"
        if "users.csv" in names and {"roles.csv", "orgs.csv"} <= names:
            return "sds-v2.1"
        if names & set(CLEVER_FILES):
            return "clever"
        if names & set(SDS_V1_FILES):
            return "sds-v1"
        if names & set(ONEROSTER_FILES):
            return "oneroster"
        if names & set(CANVAS_FILES):
            return "canvas"
        for member in SHARED_FILES:
            if member in names:
                return "canvas" if self._canvas_header(member) else "oneroster"
        return None

    def _canvas_header(self, member: str) -> bool:
        """Whether *member* has Canvas's snake_case ids (user_id, course_id) rather than
        OneRoster's sourcedId columns."""
        problems, self.problems = self.problems, []  # the reader reports them, once
        try:
            stream = self.open(member)
            if stream is None:
                return False
            table = CsvTable(self.label(member), stream, self.problems, TextOptions())
            if not table.open():
                return False
            return table.column("user_id") is not None or table.column("course_id") is not None
        finally:
            self.problems = problems

    def open(self, member: str) -> IO[bytes] | None:
        """The member's bytes, or None (with the reason recorded when it exists but cannot
        be read)."""
        key = member.lower()
        if key not in self.members:
            return None
        if self._zip is None:
            opened = open_regular(self.path / self.members[key])
            if isinstance(opened, str):
                self.problem(opened, member)
                return None
            return self.stack.enter_context(opened)
        info = self._infos[key]
        size, packed = info.file_size, max(info.compress_size, 1)
        if size > MAX_MEMBER_BYTES or (size > RATIO_FLOOR and size / packed > MAX_RATIO):
            self.problem(
                f"refusing to inflate: {packed:,} bytes would become {size:,} "
                f"(more than {MAX_MEMBER_BYTES >> 30} GiB, or over {MAX_RATIO}x), the shape "
                "of a zip bomb, not of a roster export; export the bundle again",
                member,
            )
            return None
        try:
            return self.stack.enter_context(self._zip.open(info))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            self.problem(f"cannot read this member ({exc}); export the bundle again", member)
            return None

    def table(
        self,
        member: str,
        required: tuple[str, ...],
        options: TextOptions,
        kind: str,
        escapechar: str | None = None,
    ) -> tuple[CsvTable, list[int]] | None:
        """The member's table and the indexes of its *required* columns, or None with the
        reason recorded (absent, unreadable, a column missing). The header is never quoted
        in the message: in a file without one it would be a row of personal data."""
        stream = self.open(member)
        if stream is None:
            return None
        table = CsvTable(self.label(member), stream, self.problems, options)
        table.escapechar = escapechar
        if not table.open():
            return None
        found = [table.column(c) for c in required]
        missing = [c for c, at in zip(required, found, strict=True) if at is None]
        if missing:
            table.problem(
                table.offset + 1,
                f"missing column(s) {', '.join(missing)} required by {kind}; check that the "
                "first line is the header and export again",
            )
            return None
        return table, [at for at in found if at is not None]


def open_bundle(path: Path, problems: list[Problem], stack: ExitStack) -> Bundle | None:
    """The bundle at *path* (a directory or a zip), or None with the reason recorded."""
    bundle = Bundle(path, problems, stack)
    if path.is_dir():
        try:
            entries = sorted(p.name for p in path.iterdir() if not p.is_dir())
        except OSError as exc:
            bundle.problem(f"cannot list the directory: {exc.strerror}")
            return None
        for entry in entries:
            bundle.members.setdefault(entry.lower(), entry)
        return bundle
    opened = open_regular(path)
    if isinstance(opened, str):
        bundle.problem(opened)
        return None
    stack.enter_context(opened)
    try:
        archive = stack.enter_context(zipfile.ZipFile(opened))
    except (OSError, zipfile.BadZipFile) as exc:
        bundle.problem(f"not a readable zip file ({exc}); export the bundle again")
        return None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        bundle.problem(
            f"the zip holds {len(infos):,} members, not a roster bundle's few files; "
            "export the bundle again"
        )
        return None
    unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        bundle.problem(
            f"refusing a bundle with paths outside itself: {unsafe[:3]}; export the bundle again"
        )
        return None
    for info in infos:
        if info.is_dir() or _ignored_member(info.filename):
            continue
        key = PurePosixPath(info.filename.replace("\\", "/")).name.lower()
        if key in bundle._infos:
            bundle.problem(
                f"two members are named {key} ({bundle._infos[key].filename} and "
                f"{info.filename}); a bundle holds one of each file"
            )
            return None
        bundle._infos[key] = info
        bundle.members[key] = info.filename
    bundle._zip = archive
    return bundle
