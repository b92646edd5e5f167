"""Fingerprints of the exports a run reads (docs/holds.md); ``guards_judge`` compares
tonight's with the last applied one: re-keyed ids, a new id shape, a source that shrank.

A fingerprint is small whatever the source's size: counts, the shape of its ids (lengths,
character classes, leading zeros, common prefix), its header, and a bottom-k sample of its
ids' hashes (the ``SAMPLE`` smallest): a uniform sample of the ids, so "how many of
tonight's ids were seen before" is measured on the part of tonight's sample that falls
under the old sample's largest hash (exactly, for sources of at most ``SAMPLE`` ids). A
million-row source costs 4 KB and a few tenths of a second.

Ids are taken as the planner sees them (after ``id_prefix`` and ``--hash-ids``): an account
is keyed by that id, so a change there -- a new prefix, a new SIS id behind the same hash
key -- is exactly what creates accounts nobody wanted. The *shape* is read from the id
before hashing (a hash has no shape: ``Person.sis_id``), after the prefix.

"Seen before" counts an id seen in this source's last applied export, or already holding
an account in the mapping: students moving between per-class roster files are seen (in
the mapping), a re-keyed export's ids are in neither.

Pure: the caller reads the previous fingerprints from the ledger and passes them in.
"""

from __future__ import annotations

import heapq
import os
import re
import zlib
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, compress, groupby
from operator import attrgetter, countOf, methodcaller, ne
from typing import Any

from kprov.rosters.model import Person
from kprov.rosters.people import People

SAMPLE = 1024  # hashes kept per source: a proportion's error is about 1.5 % at this size
MIN_IDS = 20  # smaller sources are never judged: their normal churn looks like anything
_MIX = 0x9E3779B1  # Knuth's multiplicative constant (odd: a bijection of 32-bit values)
_MASK = 0xFFFFFFFF
ALL = 1 << 32  # larger than any hash: "the whole source is in the sample"
COMMAND_LINE = ("<command line>", "<stdin>", "-")


def id_hash(external_id: str) -> int:
    """A stable 32-bit hash (CRC-32 is ~10x cheaper than a cryptographic hash per id; an
    integer multiplication, whose carries are not linear over bits, scrambles CRC's linear
    structure, so the smallest hashes are a sample of the ids, not an affine subset of
    their bit patterns)."""
    return zlib.crc32(external_id.encode("utf-8", "surrogatepass")) * _MIX & _MASK


@dataclass(frozen=True)
class Shape:
    """What tonight's ids look like, measured on the sample."""

    shortest: int = 0
    longest: int = 0
    digits: float = 0.0  # share of ids made of digits only
    letters: float = 0.0  # share of ids with at least one letter
    leading_zeros: float = 0.0  # share of ids that start with 0
    prefix: str = ""  # the prefix every sampled id shares


@dataclass(frozen=True)
class SourceFingerprint:
    """One source as it was read by one run (a roster file, a bundle, a pulled URL)."""

    source: str
    rows: int  # lines read from it (enrolments and removals)
    ids: int  # distinct ids
    sample: tuple[int, ...]  # the SAMPLE smallest id hashes, ascending
    shape: Shape = field(default_factory=Shape)
    delta: bool = False  # lists changes only: never a reference for counts or overlap
    header: str = ""
    # Rows that place someone in a class: a bundle's enrolment file cut short loses these,
    # not ids (its users file still lists everyone). 0: not counted (an older ledger's).
    enrolments: int = 0

    @property
    def threshold(self) -> int:
        """Hashes up to here are in the sample when their id was in the source."""
        return self.sample[-1] if self.ids > len(self.sample) and self.sample else ALL

    def to_json(self) -> dict[str, Any]:
        """Everything but the sample (the ledger keeps it packed beside)."""
        return {
            "source": self.source, "rows": self.rows, "ids": self.ids, "delta": self.delta,
            "header": self.header, "shape": self.shape.__dict__, "enrolments": self.enrolments,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any], sample: Sequence[int]) -> SourceFingerprint:
        shape = Shape(**{k: v for k, v in (data.get("shape") or {}).items()
                         if k in Shape.__dataclass_fields__})  # fmt: skip
        return cls(
            source=str(data["source"]), rows=int(data["rows"]), ids=int(data["ids"]),
            sample=tuple(sample), shape=shape, delta=bool(data.get("delta")),
            header=str(data.get("header") or ""), enrolments=int(data.get("enrolments") or 0),
        )  # fmt: skip


@dataclass(frozen=True)
class Observation:
    """Tonight's fingerprint of a source, with the ids of its sample (kept in memory only:
    the overlap with the mapping is measured on them)."""

    fingerprint: SourceFingerprint
    sampled: tuple[tuple[int, str], ...]  # (hash, external id), ascending


def source_key(file: str, known: Collection[str]) -> str:
    """The source an origin's file belongs to: itself, or the bundle (or pulled URL) before
    the ``!`` of ``bundle.zip!users.csv``."""
    if file in known:
        return file
    head, bang, _member = file.partition("!")
    return head if bang and (head in known or not known) else file


def stable_key(source: str) -> str:
    """How the ledger names a source from night to night: a URL as it is, a path made
    absolute (cron's working directory is not the operator's), symlinks kept: a `tonight`
    link that moves every night is one source."""
    if "://" in source or source in COMMAND_LINE:
        return source
    return os.path.abspath(source)


def observe(
    people: Iterable[Person],
    sources: Sequence[str],
    *,
    removals: Iterable[Person] = (),
    deltas: Collection[str] = (),
    headers: Mapping[str, str] | None = None,
) -> dict[str, Observation]:
    """Tonight's fingerprint of every source in *sources* (each named by ``stable_key``);
    a source nobody came from has zero ids (the empty export that reads as "all left").

    Each source's ids are gathered in C loops, a run of lines at a time (a million ids:
    tens of MB, freed at once); the ids the SIS gave before hashing are looked up for the
    sampled ids only."""
    known = set(sources)
    parts: dict[str, list[Callable[[], Iterable[str]]]] = {s: [] for s in sources}
    rows: dict[str, int] = dict.fromkeys(sources, 0)
    placed: dict[str, int] = dict.fromkeys(sources, 0)
    hashed: set[str] = set()
    groups = [people if isinstance(people, list | People) else list(people), list(removals)]
    for number, group in enumerate(groups):
        for file, ids, count, sis_id, classes in _file_runs(group):  # source by source
            key = source_key(file, known)
            target = parts.get(key)
            if target is None:
                continue
            if sis_id:
                hashed.add(key)
            target.append(ids)
            rows[key] += count
            if number == 0:  # enrolments, not removals
                placed[key] += classes
    found: dict[str, Observation] = {}
    headers = headers or {}
    for source in sources:
        count, sample, sampled_ids = _bottom(partial(_joined, parts[source]))
        shaped = sampled_ids
        if source in hashed:
            shaped = _sis_ids(groups, source, known, shaped)
        fingerprint = SourceFingerprint(
            stable_key(source), rows[source], count, tuple(sample),
            _shape(shaped), source in deltas, headers.get(source, ""), placed[source],
        )  # fmt: skip
        sampled = tuple(zip(sample, sampled_ids, strict=True))
        found[fingerprint.source] = Observation(fingerprint, sampled)
    return found


def _joined(parts: list[Callable[[], Iterable[str]]]) -> Iterator[str]:
    return chain.from_iterable(part() for part in parts)


def _file_runs(
    people: Iterable[Person],
) -> Iterator[tuple[str, Callable[[], Iterable[str]], int, str | None, int]]:
    """(file, its ids (read again at each call), how many, the sis id of its first, how many
    place someone in a class) of each run of people from one file. A roster's ``People``
    gives them by column, split when read: a statewide roster is hashed without holding its
    millions of ids at once."""
    if isinstance(people, People):
        for file, start, end, sis_id in people.file_ranges():
            read = partial(people.ids_between, start, end)
            yield file, read, end - start, sis_id, people.placed_between(start, end)
        return
    for file, run in groupby(people, key=_FILE):
        lines = list(run)  # references only
        placed = len(lines) - countOf(map(_CLASS, lines), None)
        ids = [*map(_EXTERNAL, lines)]
        yield file, partial(iter, ids), len(ids), lines[0].sis_id, placed


_FILE = attrgetter("origin.file")
_EXTERNAL = attrgetter("external_id")
_CLASS = attrgetter("instance_key")
_ENCODE = methodcaller("encode", "utf-8", "surrogatepass")


def _bottom(ids: Callable[[], Iterable[str]]) -> tuple[int, list[int], list[str]]:
    """How many distinct ids *ids()* gives (a person on many lines counts once), and the
    SAMPLE smallest distinct hashes, ascending, with their ids.

    The ids are hashed in C loops in the order they were read; selecting and sorting run
    over plain integers (not pairs: a tuple compares slowly), and only the sampled ids are
    paired with their hashes. A source of more than SAMPLE distinct ids is counted from its
    sample (the bottom-k estimate, within about 3 %: ``describe`` says "about"), which
    spares a set of a million ids. *ids* gives them again at each call: hashed in a first
    pass, the sampled ones picked in a second."""
    try:
        hashes = _hashes(ids(), str.encode)
    except UnicodeEncodeError:  # a lone surrogate from a YAML escape: hashed as id_hash does
        hashes = _hashes(ids(), _ENCODE)
    if len(hashes) <= SAMPLE:
        pairs = dict(zip(hashes, ids(), strict=True))
        return (len(pairs), *_ascending(pairs))
    for repeats in (2, 8, 64, 0):  # enough smallest hashes, repeats included, for SAMPLE
        pool: Iterable[int] = set(hashes) if repeats == 0 else hashes
        limit = heapq.nsmallest(SAMPLE * max(repeats, 1), pool)[-1]
        chosen = bytes(map(limit.__ge__, hashes))  # one byte an id
        pairs = dict(zip(compress(hashes, chosen), compress(ids(), chosen), strict=True))
        if len(pairs) >= SAMPLE or limit == max(hashes):
            break
    sample, sampled = _ascending(pairs)
    if len(sample) <= SAMPLE:  # every distinct id is in the sample: counted exactly
        return len(sample), sample, sampled
    sample, sampled = sample[:SAMPLE], sampled[:SAMPLE]
    return round((SAMPLE - 1) * ALL / (sample[-1] + 1)), sample, sampled


def _ascending(pairs: dict[int, str]) -> tuple[list[int], list[str]]:
    """The hashes of *pairs* in order, and their ids (the last id of a hash, as a dict of
    pairs keeps it)."""
    order = sorted(pairs)
    return order, [*map(pairs.__getitem__, order)]


def _hashes(ids: Iterable[str], encode: Any) -> array[int]:
    """``id_hash`` of every id, 4 bytes each (C loops end to end)."""
    crcs = map(zlib.crc32, map(encode, ids))
    return array("I", map(_MASK.__and__, map(_MIX.__mul__, crcs)))


def _sis_ids(
    groups: Iterable[Iterable[Person]], source: str, known: Collection[str], exts: list[str]
) -> list[str]:
    """The ids as the SIS gave them (before --hash-ids) of the sampled *exts*."""
    wanted = dict.fromkeys(exts, "")
    for group in groups:
        for person in group:
            if person.external_id in wanted and source_key(person.origin.file, known) == source:
                wanted[person.external_id] = person.sis_id or person.external_id
    return [wanted[ext] or ext for ext in exts]


def _shape(ids: Sequence[str]) -> Shape:
    if not ids:
        return Shape()
    n = len(ids)
    lengths = list(map(len, ids))
    digits = sum(map(str.isdigit, ids))
    joined = "\n".join(ids)
    lines = joined.count("\n") == n - 1  # no id holds a line break: the text is one a line
    return Shape(
        shortest=min(lengths),
        longest=max(lengths),
        digits=digits / n,
        letters=(0 if digits == n else _with_letters(ids, joined if lines else "")) / n,
        leading_zeros=_zero_first(ids, joined if lines else "") / n,
        prefix=_common_prefix(ids),
    )


_ZERO_FIRST = methodcaller("startswith", "0")
# every line starts with an ASCII letter: each id holds one
_LETTER_FIRST = re.compile(r"[A-Za-z][^\n]*+(?:\n[A-Za-z][^\n]*+)*+")


def _zero_first(ids: Sequence[str], joined: str) -> int:
    """How many ids start with 0: counted on their *joined* text (one C pass; "" when an id
    holds a line break), else one by one."""
    if not joined:
        return sum(map(_ZERO_FIRST, ids))
    return joined.startswith("0") + joined.count("\n0")


def _with_letters(ids: Sequence[str], joined: str) -> int:
    """How many ids hold a letter (``str.isalpha``), in C loops: every one when each line of
    their *joined* text starts with an ASCII letter (one regex pass); an ASCII id holds one
    exactly when its upper and lower cases differ (a million ids of 4,000 class files are
    shaped every night); other ids are read a character at a time."""
    if joined and _LETTER_FIRST.fullmatch(joined):
        return len(ids)
    if all(map(str.isascii, ids)):
        return sum(map(ne, map(str.upper, ids), map(str.lower, ids)))
    return sum(1 for i in ids if any(map(str.isalpha, i)))


def _common_prefix(ids: Sequence[str]) -> str:
    """The characters every id starts with (the first and the last in order share them
    with everything between)."""
    low, high = min(ids), max(ids)
    n = 0
    while n < len(low) and n < len(high) and low[n] == high[n]:
        n += 1
    return low[:n]
