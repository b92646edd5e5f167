"""What the guards need to know of a manifest's sources (docs/holds.md): every source it read
(roster files, bundles, pulled OneRoster URLs, and the manifest itself for its inline
lists), which of them list changes only (deltas), each one's header, and which sources
state each class's membership (a class's removals belong to them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kprov.rosters.headers import file_header, member_headers
from kprov.rosters.model import SourceReading

if TYPE_CHECKING:
    from kprov.rosters.manifest import PulledSource
    from kprov.rosters.manifest_load import Manifest


def sources_read(
    manifest: Manifest,
    refs: list[Any],
    classes_of: Mapping[int, list[str]],
    pulled: Mapping[int, PulledSource],
    deltas: set[int],
    read_headers: Mapping[str, str],
) -> SourceReading:
    """*read_headers*: the first lines of the files already read whole (the others are
    opened again for theirs)."""
    sources: dict[str, None] = {}  # in order, each looked up at once (4,000 class files)
    delta_sources: set[str] = set()
    headers: dict[str, str] = {}
    stated: dict[str, list[str]] = defaultdict(list)
    if manifest.inline:
        sources[str(manifest.path)] = None
        for _ext, _role, _line, key in manifest.inline:
            stated[key].append(str(manifest.path))
    for index, ref in enumerate(refs):
        if ref.api is not None and index not in pulled:
            continue
        key = pulled[index].url if ref.api is not None else str(ref.path)
        if key not in sources:
            sources[key] = None
            if ref.api is not None:
                headers[key] = member_headers(pulled[index].files)
            else:
                known = read_headers.get(key)
                headers[key] = file_header(ref.path) if known is None else known
        if index in deltas:
            delta_sources.add(key)
        if ref.instance_key:
            stated[ref.instance_key].append(key)
        for class_key in classes_of.get(index, ()):
            stated[class_key].append(key)
    entries = {str(r.path) for r in refs if r.bundle is None and r.instance_key is None}
    if entries:  # `rosters:` entries: the class each line names
        for person in manifest.people:
            if person.origin.file in entries and person.instance_key:
                stated[person.instance_key].append(person.origin.file)
    return SourceReading(
        sources=tuple(sources),
        deltas=frozenset(delta_sources),
        headers=headers,
        instance_sources={k: tuple(dict.fromkeys(v)) for k, v in stated.items()},
    )
