"""YAML loading that fails cleanly and means one thing. Shared by the config file
(kprov.config) and the roster and manifest readers, so it depends on nothing of kprov's.

PyYAML composes nodes recursively, so a few hundred unclosed ``[`` would end in
RecursionError: nesting is bounded. And YAML's own rule for a key given twice is "the last
one wins", silently: a manifest class with `people:` twice would lose its first roster (and
`sync --prune` then remove those people), a config profile with `base_url:` twice would
send credentials to whichever came last. So every mapping of every YAML input is checked
as it is composed: a repeated key, or a merge key (``<<``, which overrides keys just as
silently), is recorded with both places, and the caller refuses the file.
"""

from __future__ import annotations

from dataclasses import dataclass
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


MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class RefusedKey:
    """A key that would make a mapping mean something else than it reads: given twice, or
    a merge key. Lines and columns count from 1."""

    key: str
    line: int
    column: int
    first_line: int = 0  # where the key was first given (0 for a merge key)

    @property
    def message(self) -> str:
        if not self.first_line:
            return (
                "YAML merge keys (<<) are not allowed in kprov inputs: they override keys "
                "silently; write the values out"
            )
        return (
            f"{self.key!r} is given twice (first at line {self.first_line}): YAML would "
            "silently keep only the last; keep one"
        )


class RefusedKeyError(yaml.MarkedYAMLError):
    """The first refused key of a document, for callers that stop at one problem."""

    def __init__(self, refused: RefusedKey, mark: yaml.Mark | None) -> None:
        super().__init__(problem=refused.message, problem_mark=mark)


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_YAML_DEPTH instead of overflowing
    Python's stack (PyYAML composes nodes recursively; its parser and scanner do not), and
    records every repeated or merge key in ``refused_keys`` (see the module's docstring)."""

    _depth = 0

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.refused_keys: list[tuple[RefusedKey, yaml.Mark]] = []

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        first: dict[str, yaml.Node] = {}
        for key_node, _value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # readers refuse non-text keys with their own words
            mark = key_node.start_mark
            line, column = int(mark.line) + 1, int(mark.column) + 1
            if key_node.tag == MERGE_TAG:
                self.refused_keys.append((RefusedKey(str(key_node.value), line, column), mark))
                continue
            earlier = first.setdefault(str(key_node.value), key_node)
            if earlier is not key_node:
                first_line = int(earlier.start_mark.line) + 1
                refused = RefusedKey(str(key_node.value), line, column, first_line)
                self.refused_keys.append((refused, mark))
        return node

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_YAML_DEPTH:
            raise NestedTooDeep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_checked(text: str, loader: type[BoundedLoader]) -> tuple[Any, list[RefusedKey]]:
    """The document's root node (None when empty) and every key it must be refused for.

    A sound document is composed by libyaml when PyYAML has it (``_compose_fast``: a
    4,000-class manifest took 8 s in PyYAML's own parser); anything else -- a syntax error,
    an alias, nesting too deep, a key given twice -- is composed again by *loader*, which
    names it exactly as it always has."""
    fast = _compose_fast(text)
    if fast is not _UNSOUND:
        return fast, []
    composer = loader(text)
    try:
        return composer.get_single_node(), [refused for refused, _mark in composer.refused_keys]
    finally:
        composer.dispose()


def load_checked(text: str) -> Any:
    """``yaml.load`` with BoundedLoader that raises RefusedKeyError for the first repeated or
    merge key, before anything is constructed."""
    composer = BoundedLoader(text)
    try:
        node = composer.get_single_node()
        if composer.refused_keys:
            raise RefusedKeyError(*composer.refused_keys[0])
        return None if node is None else composer.construct_document(node)
    finally:
        composer.dispose()


def yaml_error_at(exc: BaseException) -> tuple[int | None, int | None, str]:
    """(line, column, what is wrong) of an error from loading YAML with BoundedLoader."""
    if isinstance(exc, RecursionError):  # only if called from an already deep stack
        return None, None, "YAML nested too deeply; kprov inputs nest a few levels at most"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        plain = isinstance(exc, (NestedTooDeep, RefusedKeyError))
        message = problem if plain else f"invalid YAML: {problem}"
        if mark is None:
            return None, None, message
        return int(mark.line) + 1, int(mark.column) + 1, message
    return None, None, f"invalid YAML: {exc}"


_UNSOUND = object()


def _compose_fast(text: str) -> Any:
    """The root node composed by libyaml, or _UNSOUND when it is not certainly what
    ``BoundedLoader`` would return without a refused key: a YAML error, an alias or anchor
    reused, nesting deeper than MAX_YAML_DEPTH, a key given twice or a merge key. Nodes,
    tags (the same Python resolver) and marks are libyaml's, the parser PyYAML's mirrors."""
    if not getattr(yaml, "__with_libyaml__", False):
        return _UNSOUND
    try:
        composer = yaml.CSafeLoader(text)
        try:
            root = composer.get_single_node()
        finally:
            composer.dispose()
    except (yaml.YAMLError, RecursionError, ValueError):
        return _UNSOUND
    return root if root is None or _sound(root) else _UNSOUND


def _sound(root: yaml.Node) -> bool:
    seen: set[int] = set()
    todo: list[tuple[yaml.Node, int]] = [(root, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_YAML_DEPTH or id(node) in seen:  # too deep, or an alias
            return False
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.tag == MERGE_TAG or str(key.value) in keys:
                        return False
                    keys.add(str(key.value))
                todo += [(key, depth + 1), (value, depth + 1)]
        elif isinstance(node, yaml.SequenceNode):
            todo += [(item, depth + 1) for item in node.value]
    return True
