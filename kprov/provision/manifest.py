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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kprov.errors import InputError
from kprov.provision.guards import SourceReading
from kprov.provision.manifest_entries import (
    COLUMN_KEYS,
    GUARD_KEYS,
    TEXT_KEYS,
    class_roster,
    entry_options,
    flag,
    forced_role,
    guard_keys,
)
from kprov.provision.manifest_sources import sources_read
from kprov.rosters import (
    KEEP_IN_FIRST_PASS,
    Inputs,
    Problem,
    Reader,
    RosterOptions,
    input_bytes,
    open_inputs,
    problems_error,
    read_bundle,
    read_input,
    scan_into,
)
from kprov.rosters.bundle import is_bundle
from kprov.rosters.collect import Collector
from kprov.rosters.csv_reader import DEFAULT_ID_COLUMN
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin, Person, Skipped
from kprov.rosters.people import without_accounts_only
from kprov.rosters.text import manifest_words
from kprov.rosters.validate import contains_email, key_problems, name_problems
from kprov.rosters.yaml_nodes import MAX_FIELD, NodeReader
from kprov.rosters.yaml_reader import line_of, load_yaml_document, scalar_text
from kprov.sis.entries import LIST_KEY as API_LIST
from kprov.sis.entries import entry_defaults, read_api_entries
from kprov.sis.source import ApiSource

if TYPE_CHECKING:  # the OneRoster client (and requests) is loaded when a source is pulled
    from kprov.sis.bundle import PulledData

Puller = Callable[[ApiSource], "PulledData"]  # pulls one `oneroster_api:` source, or raises

BUNDLE_LISTS = {  # key -> the family listed there (None: any)
    "oneroster": "oneroster", "sds": "sds", "clever": "clever", "asm": "asm", "canvas": "canvas",
    "bundles": None,
}  # fmt: skip
TOP_KEYS = {"defaults", "instances", "rosters", API_LIST, "notify", "notify_on", *GUARD_KEYS}
TOP_KEYS |= set(BUNDLE_LISTS)
DEFAULT_KEYS = (
    {"graph_id", "start_date", "end_date", "hash_ids", "ta_as_instructor"} | COLUMN_KEYS | TEXT_KEYS
)
INSTANCE_KEYS = {"key", "name", "graph_id", "start_date", "end_date", "people"}
PEOPLE_KEYS = {"roster", "rosters", "role", "learners", "instructors", "id_prefix"}
PEOPLE_KEYS |= COLUMN_KEYS | TEXT_KEYS
BUNDLE_KEYS = {"path", "graph_id", "start_date", "end_date", "id_prefix", "ta_as_instructor"}
BUNDLE_KEYS |= TEXT_KEYS


@dataclass(frozen=True)
class InstanceSpecLine:
    """One learning instance the manifest asks for."""

    key: str
    name: str
    graph_id: str
    start_date: str
    end_date: str
    origin: Origin
    named: bool = True  # False: named after its key for want of a name (a `rosters:` class)


@dataclass(frozen=True)
class _BundleDefaults:
    graph_id: str
    start_date: str  # what applies when the bundle gives a class no date of its own
    end_date: str
    dates_forced: tuple[bool, bool]  # the entry itself set start_date / end_date
    family: str | None  # "oneroster" / "sds" when listed under that key


@dataclass(frozen=True)
class _RosterRef:
    """A roster file named by the manifest, read once the structure is known to be sound."""

    path: Path
    node: yaml.Node
    options: RosterOptions
    role: str | None = None  # forces the role of every line
    instance_key: str | None = None  # the instance its people join (an instance's rosters)
    bundle: _BundleDefaults | None = None  # set for bundles: their classes become instances
    api: ApiSource | None = None  # a OneRoster REST source (`oneroster_api:`), pulled
    graph_id: str = ""  # `rosters:` entries: creates the instances their lines name...
    dates: tuple[str, str] = ("", "")  # ... with the defaults' dates

    @property
    def shown(self) -> str:
        return self.api.url if self.api is not None else str(self.path)


@dataclass
class Manifest:
    path: Path
    instances: dict[str, InstanceSpecLine] = field(default_factory=dict)
    # Each with instance_key set. A delta bundle's people may name a class the manifest does
    # not list (created by an earlier bulk): the planner finds it in its registry.
    people: Sequence[Person] = field(default_factory=list)
    # Delta bundles: enrollments marked tobedeleted, each with instance_key set. They are
    # removals (through the same brake), never implied by absence.
    removals: list[Person] = field(default_factory=list)
    # Instance keys whose whole membership the manifest states (plain rosters, inline lists,
    # bulk bundles): only there may a registration missing from the manifest be pruned.
    authoritative: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)
    complete: bool = True  # False when a bundle or pulled source lists only changes (a delta)
    hash_ids: bool = False
    id_column: str = DEFAULT_ID_COLUMN
    notify: str = ""  # where this job's failures are posted (docs/history.md)
    notify_on: str = ""
    # every roster and bundle the manifest names, in order (the run ledger fingerprints them)
    inputs: list[Path] = field(default_factory=list)
    # what the guards read of it (docs/holds.md): every source with its header and whether it
    # is a delta, which sources state each class; its max_creations:/removal_grace: keys
    reading: SourceReading = field(default_factory=SourceReading)
    guard_keys: dict[str, str | int] = field(default_factory=dict)
    # inline `learners:`/`instructors:` ids, validated with the rosters by read_manifest
    inline: list[tuple[str, str, int, str]] = field(default_factory=list, repr=False)


def load_manifest(path: Path) -> tuple[Manifest, list[Problem], list[_RosterRef]]:
    """Parse the manifest's structure; the rosters it names are read by ``read_manifest``."""
    reader = NodeReader(path)
    manifest = Manifest(path=path)
    root = load_yaml_document(path, reader.problems)
    if root is None:
        if not reader.problems:
            reader.problem(None, "the manifest is empty")
        return manifest, reader.problems, []
    top = reader.mapping(root, "the manifest", TOP_KEYS)
    defaults = (
        reader.mapping(top["defaults"], "defaults", DEFAULT_KEYS) if ("defaults" in top) else {}
    )
    default_graph = reader.text(defaults, "graph_id", "defaults", rule=_graph_rule)
    default_start = reader.text(defaults, "start_date", "defaults")
    default_end = reader.text(defaults, "end_date", "defaults")
    reader.dates_in_order(top.get("defaults"), "defaults", default_start, default_end)
    base = entry_options(reader, defaults, RosterOptions(), "defaults")
    manifest.id_column = base.id_column
    manifest.hash_ids = bool(flag(reader, defaults, "hash_ids", "defaults"))
    _notify_keys(reader, manifest, top)
    manifest.guard_keys = guard_keys(reader, top)
    folder = path.parent
    rosters: list[_RosterRef] = []
    for node in reader.sequence(top.get("instances"), "instances"):
        items = reader.mapping(node, "an instance", INSTANCE_KEYS)
        if not items:
            continue
        before = len(reader.problems)
        key = reader.text(
            items, "key", "an instance", required=True, parent=node, rule=key_problems
        )
        if len(reader.problems) > before:
            continue  # a key that cannot be one: its people are not read
        label = f"instance {key!r}" if key else "an instance"
        name = reader.text(items, "name", label, required=True, parent=node, rule=name_problems)
        graph_id = reader.text(items, "graph_id", label, default=default_graph, rule=_graph_rule)
        if key and not graph_id:
            reader.problem(node, f"{label} has no graph_id (and defaults has none)")
        if name and contains_email(name):
            reader.problem(
                items["name"],
                f"{label}: the name contains an email address; "
                "instance names must not hold personal data",
            )
        if key in manifest.instances:
            first = manifest.instances[key].origin
            reader.problem(
                items.get("key"),
                f"instance key {key!r} appears twice (first at {first}); keep keys unique",
            )
            continue
        if not key:
            continue
        start = reader.text(items, "start_date", label, default=default_start)
        end = reader.text(items, "end_date", label, default=default_end)
        reader.dates_in_order(node, label, start, end)
        manifest.instances[key] = InstanceSpecLine(
            key, name, graph_id, start, end, Origin(str(path), line_of(node))
        )
        manifest.authoritative.add(key)
        for group in reader.sequence(items.get("people"), f"{label}: people"):
            _people_entry(reader, manifest, rosters, group, key, label, base, folder)
    for list_key, family in BUNDLE_LISTS.items():
        for node in reader.sequence(top.get(list_key), list_key):
            items = reader.mapping(node, f"a {list_key} entry", BUNDLE_KEYS)
            bundle = reader.text(items, "path", f"a {list_key} entry", required=True, parent=node)
            graph_id = reader.text(
                items, "graph_id", list_key, default=default_graph, rule=_graph_rule
            )
            if bundle and not graph_id:
                reader.problem(node, f"{list_key} entry has no graph_id (and defaults has none)")
            start = reader.text(items, "start_date", list_key, default=default_start)
            end = reader.text(items, "end_date", list_key, default=default_end)
            forced = ("start_date" in items, "end_date" in items)
            if all(forced):  # otherwise each class is checked with the dates it gets
                reader.dates_in_order(node, list_key, start, end)
            if bundle:
                defaults_of = _BundleDefaults(graph_id, start, end, forced, family)
                options = entry_options(reader, items, base, list_key)
                rosters.append(_RosterRef(folder / bundle, node, options, bundle=defaults_of))
    for node, items, source in read_api_entries(reader, top.get(API_LIST), folder):
        found = entry_defaults(reader, node, items, (default_graph, default_start, default_end))
        defaults_of = _BundleDefaults(*found, family="oneroster")
        rosters.append(_RosterRef(folder, node, base, bundle=defaults_of, api=source))
    for node in reader.sequence(top.get("rosters"), "rosters"):
        entry = class_roster(reader, node, base)
        if entry is not None:
            text, options, role, graph_id = entry
            rosters.append(
                _RosterRef(
                    folder / text, node, options, role, graph_id=graph_id,
                    dates=(default_start, default_end),
                )
            )  # fmt: skip
    return manifest, reader.problems, rosters


def _graph_rule(value: str) -> list[str]:
    return key_problems(value, "graph_id")


def _notify_keys(reader: NodeReader, manifest: Manifest, top: dict[str, yaml.Node]) -> None:
    """`notify:` (a webhook URL, checked as --notify is) and `notify_on:`."""
    from kprov.errors import ConfigError
    from kprov.run_settings import parse_value

    for key in ("notify", "notify_on"):
        text = reader.text(top, key, "the manifest")
        if not text:
            continue
        try:
            setattr(manifest, key, parse_value(key, text, key) or "")
        except ConfigError as exc:
            reader.problem(top[key], exc.message)


def _people_entry(
    reader: NodeReader,
    manifest: Manifest,
    rosters: list[_RosterRef],
    group: yaml.Node,
    key: str,
    label: str,
    base: RosterOptions,
    folder: Path,
) -> None:
    fields = reader.mapping(group, f"{label}: people entry", PEOPLE_KEYS)
    usable, role = forced_role(reader, fields, label)
    if not usable:
        return
    if "instance_column" in fields:
        reader.problem(
            fields["instance_column"],
            f"{label}: every line of this roster joins {key!r}; a roster whose class column "
            "names each line's instance goes under `rosters:`",
        )
    options = replace(entry_options(reader, fields, base, label), instance_column=None)
    paths = [fields["roster"]] if "roster" in fields else []
    paths += reader.sequence(fields.get("rosters"), f"{label}: rosters")
    for roster_node in paths:
        text = scalar_text(roster_node)
        if not text:
            reader.problem(roster_node, f"{label}: roster must be a file path")
            continue
        rosters.append(_RosterRef(folder / text, roster_node, options, role, key))
    for list_key, list_role in (("learners", LEARNER), ("instructors", INSTRUCTOR)):
        for person_node in reader.sequence(fields.get(list_key), f"{label}: {list_key}"):
            ext = scalar_text(person_node)
            if ext is None:
                reader.problem(person_node, f"{label}: {list_key} must list ids")
                continue
            manifest.inline.append((ext, list_role, line_of(person_node), key))


def _read_refs(
    manifest: Manifest,
    refs: list[_RosterRef],
    classes_of: dict[int, list[str]],
    pulled: dict[int, PulledData],
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
                    from kprov.sis.bundle import read_pulled

                    info = read_pulled(pulled[index], collector, ref.options.text())
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
    loaded: tuple[Manifest, list[Problem], list[_RosterRef]] | None = None,
) -> Manifest:
    """The manifest with every roster read and every person validated; InputError if not.

    Problems of the manifest and of its rosters are reported together. Large inputs are
    first checked without keeping anyone, so a refusal never costs the people's memory.
    OneRoster REST sources are pulled with *puller* (in full, or the run stops) only once the
    manifest itself is sound, before any roster is read."""
    manifest, problems, refs = loaded or load_manifest(path)  # *loaded*: its load_manifest
    pulled: dict[int, PulledData] = {}
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
    manifest.reading = sources_read(manifest, refs, classes_of, pulled, deltas)
    manifest.inline = []
    return manifest


def _class_rosters(manifest: Manifest, refs: list[_RosterRef]) -> None:
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
    ref: _RosterRef,
    defaults: _BundleDefaults,
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
