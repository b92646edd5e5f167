"""Roster readers (CSV, YAML, OneRoster) and validation: file:line on every problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kprov.errors import InputError
from kprov.rosters.csv_reader import DEFAULT_ID_COLUMN, read_roster_csv
from kprov.rosters.model import Person, Problem, Roster
from kprov.rosters.oneroster import is_oneroster_bundle, read_oneroster
from kprov.rosters.validate import validate_people
from kprov.rosters.yaml_reader import read_roster_yaml

MAX_SHOWN_PROBLEMS = 50

__all__ = ["Person", "Problem", "Roster", "RosterOptions", "load_roster", "problems_error"]


@dataclass(frozen=True)
class RosterOptions:
    id_column: str = DEFAULT_ID_COLUMN
    hash_key: bytes | None = None  # set by --hash-ids


def read_file(path: Path, problems: list[Problem], roster: Roster, options: RosterOptions) -> None:
    name = str(path)
    if not path.exists():
        problems.append(Problem(name, None, "no such file; check the path"))
        return
    if is_oneroster_bundle(path):
        read_oneroster(path, problems, roster)
        return
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        read_roster_yaml(path, problems, roster)
        return
    if suffix not in (".csv", ".txt", ".tsv"):
        problems.append(
            Problem(
                name,
                None,
                f"unknown roster type {suffix or '(no extension)'!r}; use .csv, "
                ".yaml/.yml, or a OneRoster directory or .zip",
            )
        )
        return
    try:
        with path.open("rb") as stream:
            read_roster_csv(name, stream, problems, roster, id_column=options.id_column)
    except OSError as exc:
        problems.append(Problem(name, None, f"cannot read: {exc.strerror}"))


def problems_error(problems: Sequence[Problem], what: str = "roster") -> InputError:
    ordered = sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
    shown = [str(p) for p in ordered[:MAX_SHOWN_PROBLEMS]]
    if len(problems) > MAX_SHOWN_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_SHOWN_PROBLEMS} more")
    return InputError(
        f"{len(problems)} problem(s) in the {what}; nothing was sent:",
        problems=shown,
        hint="Fix what is named above and run the same command again.",
    )


def load_roster(paths: Sequence[Path], options: RosterOptions | None = None) -> Roster:
    """Read and validate every file; raise InputError listing every problem, or return people."""
    options = options or RosterOptions()
    problems: list[Problem] = []
    roster = Roster()
    for path in paths:
        read_file(path, problems, roster, options)
    people, id_problems = validate_people(roster.people, hash_key=options.hash_key)
    problems.extend(id_problems)
    if problems:
        raise problems_error(problems)
    roster.people = people
    return roster
