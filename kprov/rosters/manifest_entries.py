"""How a manifest entry says to read its file: encoding, delimiter, the id, role and class
columns, the source's `id_prefix`, and whether Canvas TAs are instructors.

Each key is checked where it is written (file:line:column) and in the manifest's own words,
so the fix is the line to change; an entry inherits what `defaults:` sets.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

import yaml

from kprov.errors import InputError
from kprov.rosters import RosterOptions, checked_options
from kprov.rosters.yaml_nodes import NodeReader
from kprov.rosters.yaml_reader import scalar_text

TEXT_KEYS = {"encoding", "delimiter"}
COLUMN_KEYS = {"id_column", "role_column", "instance_column"}
# A prefix is the start of an id: letters, digits and . _ : / - (no spaces, nothing a
# spreadsheet would read as a formula), short enough to leave the id its room.
PREFIX_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31}\Z")
TRUE, FALSE = ("true", "yes", "True", "Yes"), ("false", "no", "False", "No")


def flag(reader: NodeReader, items: dict[str, yaml.Node], key: str, what: str) -> bool | None:
    """A true/false key (None when absent or not a boolean: recorded)."""
    node = items.get(key)
    if node is None:
        return None
    raw = scalar_text(node)
    if raw in TRUE or raw in FALSE:
        return raw in TRUE
    reader.problem(node, f"{what}: {key} must be true or false")
    return None


OPTION_KEYS = frozenset({*TEXT_KEYS, *COLUMN_KEYS, "id_prefix", "ta_as_instructor"})


def entry_options(
    reader: NodeReader, items: dict[str, yaml.Node], base: RosterOptions, what: str
) -> RosterOptions:
    """A roster's or bundle's reading options: its own keys, else what *base* (the defaults')
    says. Each bad value is reported at its own line, and the inherited one kept. An entry
    with no key of its own reads as *base* says, worked out once (4,000 classes share it)."""
    if items.keys().isdisjoint(OPTION_KEYS):
        try:
            return _inherited(base)
        except InputError:
            pass  # never from checked options; read key by key, which says why
    return read_options(reader, items, base, what)


@lru_cache(maxsize=8)
def _inherited(base: RosterOptions) -> RosterOptions:
    """``read_options`` of an entry without a key of its own."""
    return checked_options(
        replace(
            base,
            encoding=base.encoding or None,
            delimiter=base.delimiter or None,
            role_column=base.role_column or None,
            instance_column=base.instance_column or None,
        )
    )


def read_options(
    reader: NodeReader, items: dict[str, yaml.Node], base: RosterOptions, what: str
) -> RosterOptions:
    """``entry_options`` key by key."""
    chosen: dict[str, str | None] = {}
    for key in ("encoding", "delimiter"):
        inherited = getattr(base, key) or ""
        value = reader.text(items, key, what, default=inherited) or None
        try:
            if key == "encoding":
                checked_options(RosterOptions(encoding=value))
            else:
                checked_options(RosterOptions(delimiter=value))
        except InputError as exc:
            message = str(exc).replace(f"--{key} ", f"{key} ", 1)
            reader.problem(items.get(key), f"{what}: {message}")
            value = inherited or None
        chosen[key] = value
    columns: dict[str, str | None] = {}
    for key in sorted(COLUMN_KEYS):
        inherited = getattr(base, key)
        value = reader.text(items, key, what, default=inherited or "")
        if key in items and not value and scalar_text(items[key]) is not None:
            reader.problem(items[key], f"{what}: {key} is empty; name a column")
        columns[key] = value or inherited or None
    prefix = reader.text(items, "id_prefix", what, default=base.id_prefix)
    if "id_prefix" in items and not PREFIX_SHAPE.match(prefix):
        reader.problem(
            items["id_prefix"],
            f"{what}: id_prefix {prefix!r} must be 1 to 32 letters, digits or . _ : / - "
            "(starting with a letter or digit), such as `north-`",
        )
        prefix = ""
    ta = flag(reader, items, "ta_as_instructor", what)
    return checked_options(
        replace(
            base,
            encoding=chosen["encoding"],
            delimiter=chosen["delimiter"],
            id_column=columns["id_column"] or base.id_column,
            role_column=columns["role_column"],
            instance_column=columns["instance_column"],
            id_prefix=prefix,
            ta_as_instructor=base.ta_as_instructor if ta is None else ta,
        )
    )


def forced_role(
    reader: NodeReader, items: dict[str, yaml.Node], what: str
) -> tuple[bool, str | None]:
    """(usable, role) of an entry's `role:` (None: each line's own); unusable is recorded."""
    from kprov.rosters.roles import RoleError, role_of

    text = reader.text(items, "role", what) or None
    if text is None:
        return True, None
    try:
        role = role_of(text)
    except RoleError as exc:
        reader.problem(items["role"], f"{what}: {exc}")
        return False, None
    if role is None:
        reader.problem(items["role"], f"{what}: role {text!r} is not provisioned")
        return False, None
    return True, role


ROSTER_KEYS = {"path", "role", "graph_id", "id_prefix"} | COLUMN_KEYS | TEXT_KEYS


def class_roster(
    reader: NodeReader, node: yaml.Node, base: RosterOptions
) -> tuple[str, RosterOptions, str | None, str] | None:
    """A `rosters:` entry, an enrolment file whose class column names each line's instance:
    (path, options, forced role, graph_id to create the instances it names); None if
    unusable (recorded). The class column is `instance` unless `instance_column:` names it."""
    what = "a rosters entry"
    items = reader.mapping(node, what, ROSTER_KEYS)
    path = reader.text(items, "path", what, required=True, parent=node)
    usable, role = forced_role(reader, items, what)
    options = entry_options(reader, items, base, what)
    graph_id = reader.text(items, "graph_id", what)
    if not (path and usable):
        return None
    return (
        path,
        replace(options, instance_column=options.instance_column or "instance"),
        role,
        (graph_id),
    )


GUARD_KEYS = ("max_creations", "removal_grace")


def guard_keys(reader: NodeReader, top: dict[str, yaml.Node]) -> dict[str, str | int]:
    """`max_creations:` (N or P%) and `removal_grace:` (runs), checked as the profile's keys
    are; each bad value is reported at its line (docs/holds.md)."""
    from kprov.errors import ConfigError
    from kprov.run_settings import parse_value

    found: dict[str, str | int] = {}
    for key in GUARD_KEYS:
        text = reader.text(top, key, "the manifest")
        if not text:
            continue
        try:
            found[key] = parse_value(key, text, key)
        except ConfigError as exc:
            reader.problem(top[key], exc.message)
    return found
