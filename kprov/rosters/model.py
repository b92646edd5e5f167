"""Values produced by the roster readers: people with the file and line they came from."""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

LEARNER = "learner"
INSTRUCTOR = "instructor"


# Origin and Person are NamedTuples, not frozen dataclasses: a million-row roster makes two
# million of them, and a frozen dataclass's __init__ costs several times a tuple's.


class Origin(NamedTuple):
    """Where a row came from, for messages and reports: ``file:line``."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Person(NamedTuple):
    """One roster line: who, in which role, in which learning instance (if any)."""

    external_id: str
    role: str
    origin: Origin
    instance_key: str | None = None
    sis_id: str | None = None  # set when --hash-ids derived external_id from it
    account_only: bool = False  # a OneRoster users.csv row: an account, not an enrollment


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file, with where it is and what to do about it."""

    file: str
    line: int | None
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ClassInfo:
    """A class (section) a bundle describes; it becomes the learning instance keyed ``key``."""

    key: str  # the class's sourcedId / SIS ID
    title: str  # the instance's name
    origin: Origin
    start_date: str = ""  # ISO 8601 dates, already parsed and checked
    end_date: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A row deliberately not provisioned (disabled user, role kprov does not provision...);
    reported to the operator, never silently dropped."""

    origin: Origin
    external_id: str
    reason: str


@dataclass(frozen=True)
class SourceReading:
    """The sources a command read, for the source guard (``provision.guards``): made by the
    readers (the manifest's, ``rosters.manifest_sources``) and by the request builders."""

    sources: Sequence[str] = ()  # every source read (files, bundles, pulled URLs)
    deltas: Collection[str] = ()  # those that list changes only
    headers: Mapping[str, str] = field(default_factory=dict)
    # instance key -> the sources stating its membership (a class's implicit removals)
    instance_sources: Mapping[str, Sequence[str]] = field(default_factory=dict)


def _people() -> MutableSequence[Person]:
    from kprov.rosters.people import People  # by column: a statewide roster fits in memory

    return People()


@dataclass
class Roster:
    """Everything read from a set of roster files, before validation decides it is usable."""

    people: MutableSequence[Person] = field(default_factory=_people)
    classes: dict[str, ClassInfo] = field(default_factory=dict)  # bundles: class key -> info
    removals: list[Person] = field(default_factory=list)  # delta rows marked tobedeleted
    skipped_rows: list[Skipped] = field(default_factory=list)
    # False when part of the input is a delta (or absent): it lists changes, not everyone,
    # so what it does not list must never be read as "removed".
    complete: bool = True
    # Class keys whose whole membership the input states (bundles with bulk enrollments).
    authoritative_classes: set[str] = field(default_factory=set)
    # The first line of each file read whole (``csv_whole``), for the source guard's header:
    # the file is not opened again to find it (``headers.file_header``).
    headers: dict[str, str] = field(default_factory=dict)
