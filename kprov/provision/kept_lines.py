"""The lines a plan leaves alone, saved compactly, so `kprov apply --report` lists every line.

A nightly roster is mostly lines already as asked ("already_registered"): a million of them
must cost a saved plan megabytes, not a JSON object each, and a loaded plan must not turn
them into a million objects before a report asks for them. So the kept lines that share a
reason, a file, a role and an instance are one group: their line numbers as ranges
(``"2-40001,40003"``), their ids as one newline-joined text (ids never hold a line break:
``rosters.validate`` refuses control characters). ``KeptLines`` reads them back lazily, as
the people the planner kept, group after group.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from kprov.rosters.model import Origin, Person


def _ranges(lines: Sequence[int]) -> str:
    """``[2, 3, 4, 7]`` -> ``"2-4,7"``."""
    parts: list[str] = []
    start = previous = None
    for line in lines:
        if previous is not None and line == previous + 1:
            previous = line
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = line
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)


def _lines_of(text: str) -> array[int]:
    found = array("q")
    for part in text.split(",") if text else ():
        first, _dash, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 0 < low <= high:
            raise ValueError(f"line range {part!r}")
        found.extend(range(low, high + 1))
    return found


def _joined(values: list[str]) -> str | list[str]:
    return values if any("\n" in v for v in values) else "\n".join(values)


def _split(value: Any, count: int, what: str) -> list[str]:
    values = value.split("\n") if isinstance(value, str) else value
    if not isinstance(values, list) or len(values) != count:
        raise ValueError(f"a kept group's {what} do not match its lines")
    return [str(v) for v in values]


def encode_kept(
    kept: Mapping[str, Iterable[Person]], default_instance: str
) -> list[dict[str, Any]]:
    """The saved form of a plan's kept lines: one group per reason, file, role and instance,
    in order of first appearance (lines keep their order within it)."""
    by_key: dict[tuple[str, str, str, str], list[Person]] = {}
    for reason, people in kept.items():
        for person in people:
            instance = person.instance_key or default_instance
            key = (reason, person.origin.file, person.role, instance)
            members = by_key.get(key)
            if members is None:
                members = by_key[key] = []
            members.append(person)
    runs = [(reason, (file, role, instance), members)
            for (reason, file, role, instance), members in by_key.items()]  # fmt: skip
    groups: list[dict[str, Any]] = []
    for reason, (file, role, instance), members in runs:
        group: dict[str, Any] = {
            "reason": reason,
            "file": file,
            "role": role,
            "instance": instance,
            "lines": _ranges([p.origin.line for p in members]),
            "ids": _joined([p.external_id for p in members]),
        }
        if any(p.sis_id for p in members):
            group["sis_ids"] = _joined([p.sis_id or "" for p in members])
        groups.append(group)
    return groups


@dataclass(frozen=True)
class _Group:
    file: str
    role: str
    instance: str
    lines: array[int]
    ids: list[str]
    sis_ids: list[str] | None


class KeptLines(Sequence[Person]):
    """One reason's kept lines, read back from their groups; people are made when asked."""

    def __init__(self, groups: list[_Group]) -> None:
        self._groups = groups
        self._starts: list[int] = []
        total = 0
        for group in groups:
            self._starts.append(total)
            total += len(group.ids)
        self._total = total

    def __len__(self) -> int:
        return self._total

    def _person(self, group: _Group, at: int) -> Person:
        sis = group.sis_ids[at] if group.sis_ids is not None else ""
        origin = Origin(group.file, group.lines[at])
        return Person(group.ids[at], group.role, origin, group.instance or None, sis or None)

    def __iter__(self) -> Iterator[Person]:
        for group in self._groups:
            for at in range(len(group.ids)):
                yield self._person(group, at)

    @overload
    def __getitem__(self, index: int) -> Person: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Person]: ...
    def __getitem__(self, index: int | slice) -> Person | Sequence[Person]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._total))]
        if index < 0:
            index += self._total
        if not 0 <= index < self._total:
            raise IndexError(index)
        which = bisect_right(self._starts, index) - 1
        return self._person(self._groups[which], index - self._starts[which])


def decode_kept(raw: Any) -> dict[str, KeptLines]:
    """reason -> its kept lines; ValueError/TypeError/KeyError for anything malformed."""
    if not isinstance(raw, list):
        raise TypeError("kept_lines is not a list")
    by_reason: dict[str, list[_Group]] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise TypeError("a kept group is not an object")
        lines = _lines_of(str(item["lines"]))
        ids = _split(item["ids"], len(lines), "ids")
        sis = _split(item["sis_ids"], len(lines), "SIS ids") if "sis_ids" in item else None
        group = _Group(str(item["file"]), str(item["role"]), str(item["instance"]), lines, ids, sis)
        by_reason.setdefault(str(item["reason"]), []).append(group)
    return {reason: KeptLines(groups) for reason, groups in by_reason.items()}
