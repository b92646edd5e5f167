"""The semester manifest: learning instances and their people, validated as a whole.

A manifest is YAML (safe loading, no aliases). Every problem is reported with file:line, and
roster files it names are read and validated too, before anything is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kprov.rosters import Problem, RosterOptions, problems_error
from kprov.rosters.csv_reader import DEFAULT_ID_COLUMN
from kprov.rosters.model import INSTRUCTOR, LEARNER, ROLES, Origin, Person, Roster, Skipped
from kprov.rosters.oneroster import read_oneroster
from kprov.rosters.validate import validate_people
from kprov.rosters.yaml_reader import line_of, load_yaml_document, mapping_items, scalar_text

MAX_FIELD = 256
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
TOP_KEYS = {"defaults", "instances", "oneroster"}
DEFAULT_KEYS = {"graph_id", "start_date", "end_date", "id_column", "hash_ids"}
INSTANCE_KEYS = {"key", "name", "graph_id", "start_date", "end_date", "people"}
PEOPLE_KEYS = {"roster", "rosters", "role", "learners", "instructors"}
ONEROSTER_KEYS = {"path", "graph_id", "start_date", "end_date"}


@dataclass(frozen=True)
class InstanceSpecLine:
    """One learning instance the manifest asks for."""

    key: str
    name: str
    graph_id: str
    start_date: str
    end_date: str
    origin: Origin


@dataclass(frozen=True)
class _RosterRef:
    """A roster file named by the manifest, read once the structure is known to be sound."""

    path: Path
    node: yaml.Node
    role: str | None = None  # forces the role of every line
    instance_key: str = ""  # the instance its people join (plain rosters)
    oneroster: InstanceSpecLine | None = None  # defaults for the classes of a bundle


@dataclass
class Manifest:
    path: Path
    instances: dict[str, InstanceSpecLine] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)  # each with instance_key set
    # Delta bundles: enrollments marked tobedeleted, each with instance_key set. They are
    # removals (through the same brake), never implied by absence.
    removals: list[Person] = field(default_factory=list)
    # Instance keys whose whole membership the manifest states (plain rosters, inline lists,
    # bulk bundles): only there may a registration missing from the manifest be pruned.
    authoritative: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)
    hash_ids: bool = False
    id_column: str = DEFAULT_ID_COLUMN


class _Reader:
    """Walks the composed YAML nodes, collecting problems with their lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = line_of(node) if node is not None else None
        column = int(node.start_mark.column) + 1 if node is not None else None
        self.problems.append(Problem(self.name, line, message, column))

    def mapping(self, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping (key: value lines)")
            return {}
        for key_node, _value in node.value:
            key = scalar_text(key_node)
            if key not in allowed:
                self.problem(
                    key_node,
                    f"unknown field {key!r} in {what}; expected one of: "
                    f"{', '.join(sorted(allowed))}",
                )
        return mapping_items(node)

    def sequence(self, node: yaml.Node | None, what: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{what} must be a list")
            return []
        return list(node.value)

    def text(
        self,
        items: dict[str, yaml.Node],
        key: str,
        what: str,
        *,
        required: bool = False,
        default: str = "",
        parent: yaml.Node | None = None,
    ) -> str:
        node = items.get(key)
        if node is None:
            if required:
                self.problem(parent, f"{what} has no {key}; add `{key}:`")
            return default
        value = scalar_text(node)
        if value is None or (required and not value.strip()):
            if required or (value is None and not isinstance(node, yaml.ScalarNode)):
                self.problem(node, f"{what}: {key} must be a non-empty text")
            return default
        value = value.strip()
        if len(value) > MAX_FIELD:
            self.problem(
                node, f"{what}: {key} is {len(value)} characters; the API allows {MAX_FIELD}"
            )
        if key.endswith("_date") and value and not _DATE.match(value):
            self.problem(node, f"{what}: {key} {value!r} is not an ISO 8601 date (e.g. 2026-09-01)")
        return value


def load_manifest(path: Path) -> tuple[Manifest, list[Problem], list[_RosterRef]]:
    """Parse the manifest's structure; the rosters it names are read by ``read_manifest``."""
    reader = _Reader(path)
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
    default_graph = reader.text(defaults, "graph_id", "defaults")
    default_start = reader.text(defaults, "start_date", "defaults")
    default_end = reader.text(defaults, "end_date", "defaults")
    manifest.id_column = reader.text(defaults, "id_column", "defaults", default=DEFAULT_ID_COLUMN)
    if "hash_ids" in defaults:
        raw = scalar_text(defaults["hash_ids"])
        if raw not in ("true", "false", "yes", "no", "True", "False"):
            reader.problem(defaults["hash_ids"], "defaults: hash_ids must be true or false")
        manifest.hash_ids = raw in ("true", "yes", "True")
    base = path.parent
    rosters: list[_RosterRef] = []
    for node in reader.sequence(top.get("instances"), "instances"):
        items = reader.mapping(node, "an instance", INSTANCE_KEYS)
        if not items:
            continue
        key = reader.text(items, "key", "an instance", required=True, parent=node)
        label = f"instance {key!r}" if key else "an instance"
        name = reader.text(items, "name", label, required=True, parent=node)
        graph_id = reader.text(items, "graph_id", label, default=default_graph)
        if key and not graph_id:
            reader.problem(node, f"{label} has no graph_id (and defaults has none)")
        if name and _EMAIL.search(name):
            reader.problem(
                items["name"],
                f"{label}: the name contains an email address; "
                "instance names must not hold personal data",
            )
        if key in manifest.instances:
            first = manifest.instances[key].origin
            reader.problem(
                items.get("key"),
                f"instance key {key!r} appears twice (first at {first}); keys must be unique",
            )
            continue
        if not key:
            continue
        manifest.instances[key] = InstanceSpecLine(
            key,
            name,
            graph_id,
            reader.text(items, "start_date", label, default=default_start),
            reader.text(items, "end_date", label, default=default_end),
            Origin(str(path), line_of(node)),
        )
        for group in reader.sequence(items.get("people"), f"{label}: people"):
            fields = reader.mapping(group, f"{label}: people entry", PEOPLE_KEYS)
            role = reader.text(fields, "role", label) or None
            if role is not None and role not in ROLES:
                reader.problem(
                    fields["role"], f"{label}: role {role!r} is not one of: {', '.join(ROLES)}"
                )
                continue
            paths = [fields["roster"]] if "roster" in fields else []
            paths += reader.sequence(fields.get("rosters"), f"{label}: rosters")
            for roster_node in paths:
                text = scalar_text(roster_node)
                if not text:
                    reader.problem(roster_node, f"{label}: roster must be a file path")
                    continue
                rosters.append(_RosterRef(base / text, roster_node, role, key))
            for list_key, list_role in (("learners", LEARNER), ("instructors", INSTRUCTOR)):
                for person_node in reader.sequence(fields.get(list_key), f"{label}: {list_key}"):
                    ext = scalar_text(person_node)
                    if ext is None:
                        reader.problem(person_node, f"{label}: {list_key} must list ids")
                        continue
                    manifest.people.append(
                        Person(
                            ext,
                            list_role,
                            Origin(str(path), line_of(person_node)),
                            instance_key=key,
                        )
                    )
    for node in reader.sequence(top.get("oneroster"), "oneroster"):
        items = reader.mapping(node, "a oneroster entry", ONEROSTER_KEYS)
        bundle = reader.text(items, "path", "a oneroster entry", required=True, parent=node)
        graph_id = reader.text(items, "graph_id", "oneroster", default=default_graph)
        if bundle and not graph_id:
            reader.problem(node, "oneroster entry has no graph_id (and defaults has none)")
        if bundle:
            defaults_for_classes = InstanceSpecLine(
                "",
                "",
                graph_id,
                reader.text(items, "start_date", "oneroster", default=default_start),
                reader.text(items, "end_date", "oneroster", default=default_end),
                Origin(str(path), line_of(node)),
            )
            rosters.append(_RosterRef(base / bundle, node, oneroster=defaults_for_classes))
    return manifest, reader.problems, rosters


def read_manifest(path: Path, *, hash_key: bytes | None = None) -> Manifest:
    """The manifest with every roster read and every person validated; InputError if not."""
    from kprov.rosters import read_file

    manifest, problems, rosters = load_manifest(path)
    options = RosterOptions(id_column=manifest.id_column)
    for ref in rosters:
        roster = Roster()
        if not ref.path.exists():
            problems.append(
                Problem(
                    str(path),
                    line_of(ref.node),
                    f"roster {str(ref.path)!r} does not exist (paths are relative to the manifest)",
                )
            )
            continue
        if ref.oneroster is not None:
            read_oneroster(ref.path, problems, roster)
            for class_key, title in roster.class_titles.items():
                if class_key in manifest.instances:
                    problems.append(
                        Problem(
                            str(path),
                            line_of(ref.node),
                            f"OneRoster class {class_key!r} is also listed under instances",
                        )
                    )
                    continue
                manifest.instances[class_key] = InstanceSpecLine(
                    class_key,
                    title[:MAX_FIELD] or class_key,
                    ref.oneroster.graph_id,
                    ref.oneroster.start_date,
                    ref.oneroster.end_date,
                    Origin(f"{ref.path}!classes.csv", 0),
                )
            manifest.people.extend(
                p for p in roster.people if not p.account_only and p.instance_key
            )
            manifest.skipped.extend(roster.skipped_rows)
            continue
        read_file(ref.path, problems, roster, options)
        for person in roster.people:
            manifest.people.append(
                Person(
                    person.external_id,
                    ref.role or person.role,
                    person.origin,
                    instance_key=ref.instance_key,
                )
            )
    people, id_problems = validate_people(manifest.people, hash_key=hash_key)
    problems.extend(id_problems)
    for person in people:
        if person.instance_key not in manifest.instances:
            problems.append(
                Problem(
                    person.origin.file,
                    person.origin.line,
                    f"enrolled in unknown class {person.instance_key!r}",
                )
            )
    if problems:
        raise problems_error(problems, what="manifest")
    manifest.people = people
    manifest.authoritative = set(manifest.instances)  # narrowed for delta bundles
    return manifest
