"""YAML rosters: a list of users, or a mapping with ``users:``. Safe loading only.

Aliases are refused outright: a roster never needs them, and they are how an "alias bomb"
turns a few hundred bytes into gigabytes. Nesting is bounded, because PyYAML composes
recursively and a few hundred ``[`` would end in RecursionError. Values are taken as written
(``00123`` stays a string with its zeros), and every user keeps the line it was written on.
Every YAML input of kprov (rosters, manifests, the config file) is loaded with
``BoundedLoader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import yaml

from kprov.rosters.collect import Collector
from kprov.rosters.model import LEARNER, Problem
from kprov.rosters.roles import RoleError, role_of
from kprov.rosters.text import open_regular
from kprov.yaml_bounds import BoundedLoader, compose_checked, yaml_error_at

MAX_YAML_BYTES = 20 * 1024 * 1024
ID_KEYS = ("external_user_id", "id")
USER_KEYS = (*ID_KEYS, "role", "instance")
USER_KEYS_TEXT = "external_user_id (or id), role, instance"
_WHAT = {"external_user_id": "id", "id": "id", "role": "role", "instance": "instance key"}
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class _AliasRefused(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__("alias")
        self.mark = mark


class RosterLoader(BoundedLoader):
    """BoundedLoader that refuses aliases (and so alias bombs) before anything is expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasRefused(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def read_capped(name: str, stream: IO[bytes], problems: list[Problem]) -> bytes | None:
    """The whole of a YAML input, or None (recorded) past MAX_YAML_BYTES."""
    try:
        raw = stream.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        problems.append(Problem(name, None, f"cannot read: {exc.strerror}"))
        return None
    if len(raw) > MAX_YAML_BYTES:
        problems.append(
            Problem(
                name,
                None,
                f"file is over {MAX_YAML_BYTES // (1024 * 1024)} MiB; YAML inputs are limited "
                "to that: use CSV for large rosters",
            )
        )
        return None
    return raw


def load_yaml_document(
    path: Path, problems: list[Problem], stream: IO[bytes] | None = None, name: str = ""
) -> yaml.Node | None:
    """Compose (not construct) a YAML file into nodes with line marks, or record why not."""
    name = name or str(path)
    if stream is None:
        opened = open_regular(path)
        if isinstance(opened, str):
            problems.append(Problem(name, None, opened))
            return None
        with opened:
            raw = read_capped(name, opened, problems)
    else:
        raw = read_capped(name, stream, problems)
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem(
                name,
                line,
                f"byte 0x{raw[exc.start]:02X} is not valid UTF-8; save the file as UTF-8",
            )
        )
        return None
    try:
        root, refused = compose_checked(text, RosterLoader)
    except _AliasRefused as exc:
        alias_line = exc.mark.line + 1 if exc.mark else None
        column = exc.mark.column + 1 if exc.mark else None
        problems.append(
            Problem(
                name,
                alias_line,
                "YAML aliases (*name) are not allowed in kprov inputs; write the values out",
                column,
            )
        )
    except (yaml.YAMLError, RecursionError) as exc:
        at_line, at_column, message = yaml_error_at(exc)
        problems.append(Problem(name, at_line, message, at_column))
    else:
        # A repeated key refuses the file; the rest is still read, so one run reports all.
        problems.extend(Problem(name, k.line, k.message, k.column) for k in refused)
        return root
    return None


def scalar_text(node: yaml.Node) -> str | None:
    """A scalar's text as written; None for null or a non-scalar."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag.endswith(":null"):
        return None
    return str(node.value)


def mapping_items(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    return {str(key.value): value for key, value in node.value if isinstance(key, yaml.ScalarNode)}


def _foreign_tag(node: yaml.Node) -> str | None:
    """A tag outside YAML's core schema (e.g. !!python/...), anywhere in *node*."""
    if str(node.tag) not in _CORE_TAGS:
        return str(node.tag)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    for child in children:
        found = _foreign_tag(child)
        if found:
            return found
    return None


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def column_of(node: yaml.Node) -> int:
    return int(node.start_mark.column) + 1


def _kind(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _unknown(key_node: yaml.Node) -> str:
    if isinstance(key_node, yaml.ScalarNode):
        return f"unknown key {scalar_text(key_node)!r}"
    return f"{_kind(key_node)} is not a key"


class _UserReader:
    """One YAML roster's users; every problem with its line and column."""

    def __init__(self, name: str, collector: Collector) -> None:
        self.name = name
        self.collector = collector

    def problem(self, node: yaml.Node, message: str) -> None:
        self.collector.problems.append(Problem(self.name, line_of(node), message, column_of(node)))

    def fields(self, item: yaml.MappingNode) -> dict[str, yaml.Node] | None:
        """The keys of a user mapping, or None: an unknown key changes what the line means
        (`roll: instructor` would make a learner), so it is refused, not skipped. (A repeated
        key is refused by the loader, for every YAML input.)"""
        fields: dict[str, yaml.Node] = {}
        good = True
        for key_node, value in item.value:
            key = scalar_text(key_node)
            if key not in USER_KEYS:
                self.problem(
                    key_node, f"{_unknown(key_node)} in a user; the keys are: {USER_KEYS_TEXT}"
                )
                good = False
            else:
                fields.setdefault(key, value)
        if "external_user_id" in fields and "id" in fields:
            self.problem(item, "user has both external_user_id and id; keep one")
            good = False
        for key, value in fields.items():
            if not isinstance(value, yaml.ScalarNode):
                self.problem(value, f"{key} must be a text (one {_WHAT[key]}), not {_kind(value)}")
                good = False
        if not good:
            return None
        if not any(k in fields for k in ID_KEYS):
            self.problem(item, "user has no external_user_id")
            return None
        return fields

    def read(self, item: yaml.Node) -> None:
        foreign = _foreign_tag(item)
        if foreign:
            self.problem(item, f"YAML tag {foreign!r} is not allowed; write plain values")
            return
        raw_role = ""
        instance: str | None = None
        if isinstance(item, yaml.ScalarNode):
            external_id = scalar_text(item) or ""
        elif isinstance(item, yaml.MappingNode):
            fields = self.fields(item)
            if fields is None:
                return
            external_id = scalar_text(next(fields[k] for k in ID_KEYS if k in fields)) or ""
            if "role" in fields:
                raw_role = scalar_text(fields["role"]) or ""
            if "instance" in fields:
                instance = (scalar_text(fields["instance"]) or "").strip() or None
        else:
            self.problem(item, "a user must be an id or a mapping")
            return
        line, column = line_of(item), column_of(item)
        try:
            role = role_of(raw_role, empty=LEARNER)
        except RoleError as exc:
            self.problem(item, str(exc))
            return
        if role is None:
            self.collector.skip(
                self.name, line, external_id, f"role {raw_role.strip()} is not provisioned"
            )
            return
        if instance and self.collector.id_prefix:  # a class the source names: its namespace
            instance = self.collector.id_prefix + instance
        self.collector.add(external_id, role, self.name, line, instance, column=column)


def _check_root_keys(root: yaml.MappingNode, name: str, problems: list[Problem]) -> None:
    """A roster mapping holds one `users:` list; anything else is a typo or a second list
    (a second `users:` is refused by the loader)."""
    for key_node, _value in root.value:
        if scalar_text(key_node) == "users":
            continue
        problems.append(
            Problem(
                name,
                line_of(key_node),
                f"{_unknown(key_node)} in a roster; it holds one `users:` list only",
                column_of(key_node),
            )
        )


def read_roster_yaml(
    path: Path, collector: Collector, stream: IO[bytes] | None = None, name: str = ""
) -> None:
    """A list of ids or of {external_user_id, role, instance} mappings, or ``users: [...]``."""
    name = name or str(path)
    problems = collector.problems
    before = len(problems)
    root = load_yaml_document(path, problems, stream, name)
    if root is None:
        if len(problems) == before:
            problems.append(Problem(name, None, "the file is empty; list users under 'users:'"))
        return
    users = root
    if isinstance(root, yaml.MappingNode):
        found = mapping_items(root).get("users")
        if found is None:
            problems.append(
                Problem(
                    name,
                    line_of(root),
                    "no 'users:' list in this mapping; write `users:` followed by a list of users",
                )
            )
            return
        _check_root_keys(root, name, problems)
        users = found
    if not isinstance(users, yaml.SequenceNode):
        problems.append(Problem(name, line_of(users), "expected a list of users"))
        return
    reader = _UserReader(name, collector)
    for item in users.value:
        reader.read(item)
