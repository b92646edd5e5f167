"""The manifest's structure: its keys, each checked where it is written (file:line:column),
and the instances, rosters, bundles and OneRoster sources it names, as ``load_manifest``
finds them. The rosters themselves are read afterwards, by ``rosters.manifest.read_manifest``,
once the structure is known to be sound. Every key accepted here is in docs/manifest.md (a
test compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from kprov.gc_pause import gc_paused
from kprov.rosters import RosterOptions
from kprov.rosters.api_source import ApiSource
from kprov.rosters.csv_reader import DEFAULT_ID_COLUMN
from kprov.rosters.manifest_api import LIST_KEY as API_LIST
from kprov.rosters.manifest_api import entry_defaults, read_api_entries
from kprov.rosters.manifest_entries import (
    COLUMN_KEYS,
    GUARD_KEYS,
    TEXT_KEYS,
    class_roster,
    entry_options,
    flag,
    forced_role,
    guard_keys,
)
from kprov.rosters.model import INSTRUCTOR, LEARNER, Origin, Person, Problem, Skipped, SourceReading
from kprov.rosters.validate import contains_email, key_problems, name_problems
from kprov.rosters.yaml_nodes import NodeReader
from kprov.rosters.yaml_reader import line_of, load_yaml_document, scalar_text

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
class BundleDefaults:
    graph_id: str
    start_date: str  # what applies when the bundle gives a class no date of its own
    end_date: str
    dates_forced: tuple[bool, bool]  # the entry itself set start_date / end_date
    family: str | None  # "oneroster" / "sds" when listed under that key


@dataclass(frozen=True)
class RosterRef:
    """A roster file named by the manifest, read once the structure is known to be sound."""

    path: Path
    node: yaml.Node
    options: RosterOptions
    role: str | None = None  # forces the role of every line
    instance_key: str | None = None  # the instance its people join (an instance's rosters)
    bundle: BundleDefaults | None = None  # set for bundles: their classes become instances
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


def load_manifest(path: Path) -> tuple[Manifest, list[Problem], list[RosterRef]]:
    """Parse the manifest's structure; the rosters it names are read by ``read_manifest``.
    The cyclic collector is paused: a 4,000-class manifest makes ~100,000 nodes, no cycle."""
    with gc_paused():
        return _load_manifest(path)


def _load_manifest(path: Path) -> tuple[Manifest, list[Problem], list[RosterRef]]:
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
    rosters: list[RosterRef] = []
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
                defaults_of = BundleDefaults(graph_id, start, end, forced, family)
                options = entry_options(reader, items, base, list_key)
                rosters.append(RosterRef(folder / bundle, node, options, bundle=defaults_of))
    for node, items, source in read_api_entries(reader, top.get(API_LIST), folder):
        found = entry_defaults(reader, node, items, (default_graph, default_start, default_end))
        defaults_of = BundleDefaults(*found, family="oneroster")
        rosters.append(RosterRef(folder, node, base, bundle=defaults_of, api=source))
    for node in reader.sequence(top.get("rosters"), "rosters"):
        entry = class_roster(reader, node, base)
        if entry is not None:
            text, options, role, graph_id = entry
            rosters.append(
                RosterRef(
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
    rosters: list[RosterRef],
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
    options = entry_options(reader, fields, base, label)
    if options.instance_column is not None:  # every line joins *key*
        options = replace(options, instance_column=None)
    paths = [fields["roster"]] if "roster" in fields else []
    paths += reader.sequence(fields.get("rosters"), f"{label}: rosters")
    for roster_node in paths:
        text = scalar_text(roster_node)
        if not text:
            reader.problem(roster_node, f"{label}: roster must be a file path")
            continue
        rosters.append(RosterRef(folder / text, roster_node, options, role, key))
    for list_key, list_role in (("learners", LEARNER), ("instructors", INSTRUCTOR)):
        for person_node in reader.sequence(fields.get(list_key), f"{label}: {list_key}"):
            ext = scalar_text(person_node)
            if ext is None:
                reader.problem(person_node, f"{label}: {list_key} must list ids")
                continue
            manifest.inline.append((ext, list_role, line_of(person_node), key))
