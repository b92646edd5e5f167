"""YAML rosters: a list of users, or a mapping with ``users:``. Safe loading only.

Aliases are refused outright: a roster never needs them, and they are how an "alias bomb"
turns a few hundred bytes into gigabytes. Values are taken as written (``00123`` stays a
string with its zeros), and every user keeps the line it was written on.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import yaml

from kprov.rosters.collect import Collector
from kprov.rosters.model import LEARNER, Problem
from kprov.rosters.roles import RoleError, role_of
from kprov.rosters.text import open_regular

MAX_YAML_BYTES = 20 * 1024 * 1024
ID_KEYS = ("external_user_id", "id")
_CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)


class _AliasRefused(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__("alias")
        self.mark = mark


class RosterLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (and so alias bombs) before anything is expanded."""

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
        return yaml.compose(text, Loader=RosterLoader)
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
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problems.append(
            Problem(
                name,
                mark.line + 1 if mark else None,
                f"invalid YAML: {exc.problem}",
                mark.column + 1 if mark else None,
            )
        )
    except yaml.YAMLError as exc:
        problems.append(Problem(name, None, f"invalid YAML: {exc}"))
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
        users = found
    if not isinstance(users, yaml.SequenceNode):
        problems.append(Problem(name, line_of(users), "expected a list of users"))
        return
    for item in users.value:
        line = line_of(item)
        column = int(item.start_mark.column) + 1
        foreign = _foreign_tag(item)
        if foreign:
            problems.append(
                Problem(
                    name, line, f"YAML tag {foreign!r} is not allowed; write plain values", column
                )
            )
            continue
        raw_role = ""
        instance: str | None = None
        if isinstance(item, yaml.ScalarNode):
            external_id = scalar_text(item) or ""
        elif isinstance(item, yaml.MappingNode):
            fields = mapping_items(item)
            id_node = next((fields[k] for k in ID_KEYS if k in fields), None)
            if id_node is None:
                problems.append(Problem(name, line, "user has no external_user_id", column))
                continue
            external_id = scalar_text(id_node) or ""
            if "role" in fields:
                raw_role = scalar_text(fields["role"]) or ""
            if "instance" in fields:
                instance = (scalar_text(fields["instance"]) or "").strip() or None
        else:
            problems.append(Problem(name, line, "a user must be an id or a mapping", column))
            continue
        try:
            role = role_of(raw_role, empty=LEARNER)
        except RoleError as exc:
            problems.append(Problem(name, line, str(exc), column))
            continue
        if role is None:
            collector.skip(name, line, external_id, f"role {raw_role.strip()} is not provisioned")
            continue
        collector.add(external_id, role, name, line, instance, column=column)
