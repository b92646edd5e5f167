"""The semester manifest: learning instances and their people, validated as a whole.

A manifest is YAML (safe loading, no aliases). It lists instances with their people (inline
lists, or CSV/YAML rosters in any dialect), enrolment files whose class column names each
line's instance (`rosters:`), and bundles (`oneroster:`, `sds:`, `clever:`, `asm:`, `canvas:`,
or `bundles:` for any; `oneroster_api:` pulls one from a SIS, ``kprov.sis``) whose classes
become instances. Every problem is reported with file:line, and every roster it names is read
and validated before anything is sent.

What the manifest states, it states for the planner: `authoritative` names the instances whose
whole membership is stated (instances listed with their people; classes of a bundle whose
enrollments are bulk); a delta bundle's classes are not, and its `tobedeleted` enrollments
are `removals`, never implied by absence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kprov.api_facts import MAX_FIELD
from kprov.errors import InputError
from kprov.rosters import (
    KEEP_IN_FIRST_PASS,
    Inputs,
    Problem,
    Reader,
    input_bytes,
    open_inputs,
    problems_error,
    read_bundle,
    read_input,
    scan_into,
)
from kprov.rosters.api_source import ApiSource
from kprov.rosters.bundle import is_bundle
from kprov.rosters.collect import Collector
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.manifest_api import LIST_KEY as API_LIST
from kprov.rosters.manifest_load import (
    BundleDefaults,
    InstanceSpecLine,
    Manifest,
    RosterRef,
    load_manifest,
)
from kprov.rosters.manifest_sources import sources_read
from kprov.rosters.model import ClassInfo, Origin
from kprov.rosters.people_columns import without_accounts_only
from kprov.rosters.text import TextOptions, manifest_words
from kprov.rosters.validate import contains_email
from kprov.rosters.yaml_reader import line_of

if TYPE_CHECKING:  # the bundle readers load when a bundle is read
    from kprov.rosters.oneroster import BundleInfo

__all__ = [
    "InstanceSpecLine",
    "Manifest",
    "PulledSource",
    "Puller",
    "load_manifest",
    "read_manifest",
]


class PulledSource(Protocol):
    """A `oneroster_api:` source once pulled (``kprov.sis.bundle.PulledData``). The puller
    hands it in, so this reader never imports the SIS client (the arrow points from
    ``kprov.sis`` to the readers, not back)."""

    @property
    def url(self) -> str: ...

    @property
    def files(self) -> Mapping[str, bytes]: ...

    def read_into(self, collector: Collector, options: TextOptions) -> BundleInfo:
        """Read the pull as the bundle reader reads a CSV bundle, into *collector*."""
        ...


Puller = Callable[[ApiSource], PulledSource]  # pulls one `oneroster_api:` source, or raises


def _read_refs(
    manifest: Manifest,
    refs: list[RosterRef],
    classes_of: dict[int, list[str]],
    pulled: dict[int, PulledSource],
    deltas: set[int],
) -> Reader:
    """The reading pass, as a function a scan can run (again, to name duplicates)."""
    name = str(manifest.path)

    def read(collector: Collector, inputs: Inputs) -> None:
        classes_of.clear()
        deltas.clear()
        for ext, role, line, key in manifest.inline:
            collector.add(ext, role, name, line, key)
        for index, ref in enumerate(refs):
            line = line_of(ref.node)
            if ref.api is not None:
                if index in pulled:  # not pulled: the manifest has problems already
                    before = set(collector.roster.classes)
                    info = pulled[index].read_into(collector, ref.options.text())
                    classes_of[index] = [k for k in collector.roster.classes if k not in before]
                    if not info.complete:
                        deltas.add(index)
                continue
            if not ref.path.exists():
                collector.problems.append(
                    Problem(
                        name,
                        line,
                        f"roster {str(ref.path)!r} does not exist (paths are relative to the "
                        "manifest)",
                    )
                )
                continue
            if ref.bundle is None:
                if is_bundle(ref.path):
                    collector.problems.append(
                        Problem(
                            name,
                            line,
                            f"{str(ref.path)!r} is a bundle: list it under `bundles:` (its "
                            "classes become instances), not as an instance's roster",
                        )
                    )
                    continue
                collector.force_instance, collector.force_role = ref.instance_key, ref.role
                read_input(ref.path, collector, ref.options, inputs)  # `id_prefix:` too
                collector.force_instance = collector.force_role = None
                continue
            before = set(collector.roster.classes)
            found = read_bundle(ref.path, collector, ref.options, expect=ref.bundle.family)
            classes_of[index] = [k for k in collector.roster.classes if k not in before]
            if found is not None and not found.complete:
                deltas.add(index)

    return read


def read_manifest(
    path: Path,
    *,
    hash_key: bytes | None = None,
    puller: Puller | None = None,
    loaded: tuple[Manifest, list[Problem], list[RosterRef]] | None = None,
) -> Manifest:
    """The manifest with every roster read and every person validated; InputError if not.

    Problems of the manifest and of its rosters are reported together. Large inputs are
    first checked without keeping anyone, so a refusal never costs the people's memory.
    OneRoster REST sources are pulled with *puller* (in full, or the run stops) only once the
    manifest itself is sound, before any roster is read."""
    manifest, problems, refs = loaded or load_manifest(path)  # *loaded*: its load_manifest
    pulled: dict[int, PulledSource] = {}
    if not problems:
        for index, ref in enumerate(refs):
            if ref.api is not None:
                if puller is None:
                    raise InputError(f"{path}: this command cannot pull `{API_LIST}:` sources")
                pulled[index] = puller(ref.api)
    classes_of: dict[int, list[str]] = {}
    deltas: set[int] = set()
    read = _read_refs(manifest, refs, classes_of, pulled, deltas)
    files = [r.path for r in refs if r.api is None]
    with open_inputs() as inputs, manifest_words():  # remedies name manifest keys
        if not problems and input_bytes(files, inputs) > KEEP_IN_FIRST_PASS:
            scan_into(read, inputs, problems, keep=False, hash_key=None)
        roster, _rows = scan_into(read, inputs, problems, keep=True, hash_key=hash_key)
    for index, keys in classes_of.items():
        ref = refs[index]
        assert ref.bundle is not None
        for class_key in keys:
            _add_class(manifest, problems, ref, ref.bundle, roster.classes[class_key])
    if problems:
        elsewhere = any(p.file != str(path) for p in problems)
        raise problems_error(problems, what="manifest and its rosters" if elsewhere else "manifest")
    manifest.people = without_accounts_only(roster.people)
    _class_rosters(manifest, refs)
    manifest.removals = roster.removals
    manifest.skipped = roster.skipped_rows
    manifest.complete = roster.complete
    manifest.authoritative |= roster.authoritative_classes
    manifest.inputs = list(dict.fromkeys(ref.path for ref in refs if ref.api is None))
    manifest.reading = sources_read(manifest, refs, classes_of, pulled, deltas, roster.headers)
    manifest.inline = []
    return manifest


def _class_rosters(manifest: Manifest, refs: list[RosterRef]) -> None:
    """The instances `rosters:` entries name: their whole membership is stated (as an
    instance's own rosters state theirs), and an entry with graph_id creates those that are
    neither listed under instances nor known yet (named by their key)."""
    entries = {str(r.path): r for r in refs if r.bundle is None and r.instance_key is None}
    if not entries:
        return
    for person in manifest.people:
        ref = entries.get(person.origin.file)
        key = person.instance_key
        if ref is None or key is None:
            continue
        manifest.authoritative.add(key)
        if ref.graph_id and key not in manifest.instances:
            origin = Origin(str(manifest.path), line_of(ref.node))
            manifest.instances[key] = InstanceSpecLine(
                key, key[:MAX_FIELD], ref.graph_id, *ref.dates, origin, named=False
            )


def _add_class(
    manifest: Manifest,
    problems: list[Problem],
    ref: RosterRef,
    defaults: BundleDefaults,
    info: ClassInfo,
) -> None:
    """A bundle's class as an instance: the entry's own dates first, then the class's terms,
    then the manifest's defaults."""
    if info.key in manifest.instances:
        problems.append(
            Problem(
                str(manifest.path),
                line_of(ref.node),
                f"class {info.key!r} of {ref.shown} is also listed under instances; list it once",
            )
        )
        return
    if contains_email(info.title):
        problems.append(
            Problem(
                info.origin.file,
                info.origin.line,
                "the class title contains an email address; instance names must not hold "
                "personal data: rename the class in the SIS",
            )
        )
    forced_start, forced_end = defaults.dates_forced
    start = defaults.start_date if forced_start else info.start_date or defaults.start_date
    end = defaults.end_date if forced_end else info.end_date or defaults.end_date
    try:
        order = check_order(parse_date(start), parse_date(end)) if start and end else None
    except DateError:
        order = None  # reported where it is written
    if order:
        problems.append(
            Problem(
                str(manifest.path),
                line_of(ref.node),
                f"class {info.key!r} of {ref.shown}: {order} (set start_date and end_date)",
            )
        )
    manifest.instances[info.key] = InstanceSpecLine(
        info.key, info.title[:MAX_FIELD], defaults.graph_id, start, end, info.origin
    )
