"""A pull as a OneRoster CSV bundle: read in memory by kprov's bundle reader, or written out.

The same bytes serve both: ``read_pulled`` hands them to ``kprov.rosters.oneroster`` (so a
pulled source follows every rule a CSV bundle follows: roles, ``tobedeleted``, disabled users,
terms and dates, bulk versus delta, the classes whose membership is stated), and
``write_pulled`` puts them in a folder (``kprov oneroster pull --out``), to review, archive,
diff or replay with ``oneroster:``. Problems the reader finds are named as usual
(``URL!enrollments.csv:LINE``: the line of the file ``--out`` writes) and also by the page
and record they came from. Passwords are never kept: kprov does not read them.
"""

from __future__ import annotations

import bisect
import io
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import IO

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.model import Problem
from kprov.rosters.oneroster import BundleInfo, read_oneroster
from kprov.rosters.text import TextOptions
from kprov.sis.convert import Table
from kprov.sis.paging import ALWAYS_FULL, Collection
from kprov.state.files import ensure_private_dir, replace_private

# manifest.csv lists every file of the CSV binding; those not pulled are `absent`
MANIFEST_FILES = ("academicSessions", "categories", "classes", "classResources", "courses",
                  "courseResources", "demographics", "enrollments", "lineItems", "orgs",
                  "resources", "results", "users")  # fmt: skip
MANIFEST_FILES_12 = ("roles", "userProfiles")


@dataclass(frozen=True)
class PulledData:
    """What one pull read, as CSV members, with where each row came from."""

    url: str
    version: str
    tables: dict[str, Table]  # member name (users.csv) -> table
    collections: dict[str, Collection]
    delta: bool  # read with a dateLastModified filter: only changes
    since: str | None  # the filter's moment, when delta
    cursor: str  # the moment the next delta may start from (taken before this pull)
    requests: int = 0

    @cached_property
    def files(self) -> dict[str, bytes]:
        """Member name -> bytes, manifest.csv included (made once)."""
        found = {name: table.data() for name, table in self.tables.items()}
        found["manifest.csv"] = manifest_csv(self)
        return found

    def counts(self) -> dict[str, int]:
        return {name: c.count or len(c.records) for name, c in self.collections.items()}

    def read_into(self, collector: Collector, options: TextOptions) -> BundleInfo:
        """What the manifest reader calls (``rosters.manifest.PulledSource``): ``read_pulled``."""
        return read_pulled(self, collector, options)


def manifest_csv(pulled: PulledData) -> bytes:
    pulled_kinds = {name.removesuffix(".csv") for name in pulled.tables}

    def mode(kind: str) -> str:
        if kind not in pulled_kinds:
            return "absent"
        return "delta" if pulled.delta and kind not in ALWAYS_FULL else "bulk"

    kinds = (*MANIFEST_FILES, *(MANIFEST_FILES_12 if pulled.version == "1.2" else ()))
    rows = [
        ("manifest.version", "1.0"),
        ("oneroster.version", pulled.version),
        *((f"file.{kind}", mode(kind)) for kind in kinds),
        ("source.systemName", "kprov oneroster pull"),
        ("source.systemCode", pulled.url),
    ]
    return ("propertyName,value\n" + "".join(f"{k},{v}\n" for k, v in rows)).encode()


@dataclass
class PulledBundle(Bundle):
    """A ``Bundle`` whose members are in memory; named by the source's URL."""

    source_url: str = ""
    data: dict[str, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.source_url

    def open(self, member: str) -> IO[bytes] | None:
        key = member.lower()
        return io.BytesIO(self.data[self.members[key]]) if key in self.members else None


def read_pulled(pulled: PulledData, collector: Collector, options: TextOptions) -> BundleInfo:
    """Read a pull as the bundle reader reads a CSV bundle, into *collector*."""
    problems = collector.problems
    before = len(problems)
    data = pulled.files
    with ExitStack() as stack:
        bundle = PulledBundle(Path(), problems, stack, source_url=pulled.url, data=data)
        bundle.members = {name.lower(): name for name in data}
        info = read_oneroster(bundle, collector, options)
    roster = collector.roster
    roster.complete = roster.complete and info.complete
    roster.authoritative_classes |= info.authoritative
    for index in range(before, len(problems)):
        problems[index] = _located(pulled, problems[index])
    return info


def _located(pulled: PulledData, problem: Problem) -> Problem:
    """*problem* with the page and record of its row added, when it is about one."""
    prefix = f"{pulled.url}!"
    if not problem.file.startswith(prefix) or problem.line is None:
        return problem
    table = pulled.tables.get(problem.file.removeprefix(prefix))
    if table is None or not table.starts or problem.line < table.starts[0]:
        return problem
    row = bisect.bisect_right(table.starts, problem.line) - 1
    name, index = table.origins[row]
    where = pulled.collections[name].where(index)
    return replace(problem, message=f"{problem.message} [{name} {where}]")


def write_pulled(pulled: PulledData, folder: Path) -> list[Path]:
    """Write the pull as a bundle into *folder* (created 0700 if missing; files 0600, each
    replaced atomically). Returns the files written."""
    ensure_private_dir(folder)
    written = []
    for name, raw in pulled.files.items():
        path = folder / name
        replace_private(path, raw.decode("utf-8"))
        written.append(path)
    return written
