"""Walking composed YAML nodes (manifests): each problem with its line and column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from kprov.api_facts import MAX_FIELD
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.model import Problem
from kprov.rosters.text import Problems
from kprov.rosters.yaml_reader import line_of, mapping_items, scalar_text


class NodeReader:
    """Walks the composed YAML nodes, collecting problems with their lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.problems: list[Problem] = Problems()

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
        rule: Callable[[str], list[str]] | None = None,
    ) -> str:
        """The stripped text under *key* (or *default*); each problem recorded at its node,
        *rule*'s included (ids, keys and names have their rules in ``rosters.validate``)."""
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
        if rule is not None and value:
            for message in rule(value):
                self.problem(node, f"{what}: {message}")
        if key.endswith("_date") and value:
            try:
                parse_date(value)
            except DateError as exc:
                self.problem(node, f"{what}: {key} {exc}")
        return value

    def dates_in_order(self, node: yaml.Node | None, what: str, start: str, end: str) -> None:
        try:
            order = check_order(parse_date(start), parse_date(end)) if start and end else None
        except DateError:
            return  # already reported where it is written
        if order:
            self.problem(node, f"{what}: {order}")
