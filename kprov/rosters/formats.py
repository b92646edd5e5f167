"""Which kind of bundle a folder or zip is, and the reader for it.

A bundle is recognised by its file set: OneRoster 1.1/1.2, Microsoft SDS v1 and v2.1, Clever,
Apple School Manager, Canvas SIS import. What each states (bulk, whole classes, or changes)
is the reader's to say, in the ``BundleInfo`` it returns.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from kprov.rosters.bundle import open_bundle
from kprov.rosters.collect import Collector

if TYPE_CHECKING:  # each reader is loaded when its kind of bundle is read
    from kprov.rosters import RosterOptions
    from kprov.rosters.oneroster import BundleInfo

FAMILIES = {
    "oneroster": ("oneroster", "a OneRoster"),
    "sds-v1": ("sds", "an SDS"),
    "sds-v2.1": ("sds", "an SDS"),
    "clever": ("clever", "a Clever"),
    "asm": ("asm", "an Apple School Manager"),
    "canvas": ("canvas", "a Canvas"),
}
NOT_A_BUNDLE = (
    "not a roster bundle (found: {shown}); expected OneRoster files (manifest.csv, users.csv, "
    "classes.csv, enrollments.csv), SDS files (Section.csv, Student.csv, Teacher.csv, "
    "StudentEnrollment.csv, TeacherRoster.csv, or SDS v2.1 users.csv, roles.csv, orgs.csv), "
    "Clever's (schools.csv, students.csv, teachers.csv, sections.csv, enrollments.csv), Apple "
    "School Manager's (locations.csv, students.csv, staff.csv, courses.csv, classes.csv, "
    "rosters.csv) or Canvas's (users.csv, courses.csv, sections.csv, enrollments.csv, terms.csv)"
)


def read_bundle(
    path: Path, collector: Collector, options: RosterOptions, *, expect: str | None = None
) -> BundleInfo | None:
    """A OneRoster 1.1/1.2, SDS v1/v2.1, Clever, Apple School Manager or Canvas bundle,
    recognised by its file set."""
    prefix, collector.id_prefix = collector.id_prefix, options.id_prefix
    with ExitStack() as stack:
        stack.callback(setattr, collector, "id_prefix", prefix)
        bundle = open_bundle(path, collector.problems, stack)
        if bundle is None:
            return None
        kind = bundle.kind()
        if kind is None:
            shown = ", ".join(sorted(bundle.members.values())[:10]) or "nothing"
            bundle.problem(NOT_A_BUNDLE.format(shown=shown))
            return None
        family, label = FAMILIES[kind]
        if expect is not None and expect != family:
            bundle.problem(
                f"this is {label} bundle, listed under `{expect}:`; list it under `{family}:` "
                "or `bundles:`"
            )
            return None
        text = options.text()
        if kind == "sds-v1":
            from kprov.rosters.sds import read_sds_v1

            info = read_sds_v1(bundle, collector, text)
        elif kind == "clever":
            from kprov.rosters.clever import read_clever

            info = read_clever(bundle, collector, text)
        elif kind == "asm":
            from kprov.rosters.asm import read_asm

            info = read_asm(bundle, collector, text)
        elif kind == "canvas":
            from kprov.rosters.canvas import read_canvas

            info = read_canvas(bundle, collector, text, ta_as_instructor=options.ta_as_instructor)
        else:
            from kprov.rosters.oneroster import read_oneroster

            info = read_oneroster(bundle, collector, text)
        roster = collector.roster
        roster.complete = roster.complete and info.complete
        roster.authoritative_classes |= info.authoritative
        return info
