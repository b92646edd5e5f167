"""YAML loading that fails cleanly: PyYAML composes nodes recursively, so a few hundred
unclosed ``[`` would end in RecursionError. Shared by the config file (kprov.config) and the
roster and manifest readers, so it depends on nothing of kprov's.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_DEPTH = 64  # a roster needs 4 levels, a manifest 7: deeper is a broken file


class NestedTooDeep(yaml.MarkedYAMLError):
    """Nesting past MAX_YAML_DEPTH, refused before Python's recursion limit is reached."""

    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(
            problem=f"nested deeper than {MAX_YAML_DEPTH} levels; kprov inputs nest a few "
            "levels at most: look for unclosed '[' or '{' or runaway indentation here",
            problem_mark=mark,
        )


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_YAML_DEPTH instead of overflowing
    Python's stack (PyYAML composes nodes recursively; its parser and scanner do not)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_YAML_DEPTH:
            raise NestedTooDeep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def yaml_error_at(exc: BaseException) -> tuple[int | None, int | None, str]:
    """(line, column, what is wrong) of an error from loading YAML with BoundedLoader."""
    if isinstance(exc, RecursionError):  # only if called from an already deep stack
        return None, None, "YAML nested too deeply; kprov inputs nest a few levels at most"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        message = problem if isinstance(exc, NestedTooDeep) else f"invalid YAML: {problem}"
        if mark is None:
            return None, None, message
        return int(mark.line) + 1, int(mark.column) + 1, message
    return None, None, f"invalid YAML: {exc}"
