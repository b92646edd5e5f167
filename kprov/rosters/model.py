"""Values produced by the roster readers: people with the file and line they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

LEARNER = "learner"
INSTRUCTOR = "instructor"
ROLES = (LEARNER, INSTRUCTOR)


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


@dataclass
class Roster:
    """Everything read from a set of roster files, before validation decides it is usable."""

    people: list[Person] = field(default_factory=list)
    class_titles: dict[str, str] = field(default_factory=dict)  # OneRoster classes.csv
    skipped: int = 0  # rows deliberately ignored (tobedeleted, roles kprov does not provision)
