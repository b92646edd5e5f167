"""A roster's people, kept by column: about 21 bytes a row instead of about 260.

A statewide roster has millions of rows; as ``Person`` tuples (with their ``Origin``, their
id string and a list slot) a million cost ~260 MB. ``People`` keeps each column compactly --
the ids as newline-joined text in chunks of 4,096 (ids never hold a line break:
``rosters.validate`` refuses control characters; one that does is kept aside), the role as a
byte, the instance and the file as indexes into the few distinct values, the line as an
integer -- and makes each ``Person`` when it is read. It is a ``MutableSequence[Person]``
that only grows at its end (readers append; nothing inserts or replaces).

``Selection`` is some of them by position (a plan's kept lines): 4 bytes a line.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from itertools import chain, repeat
from typing import Any, overload

from kprov.rosters.model import INSTRUCTOR, LEARNER, Origin, Person

CHUNK = 4096  # ids per joined chunk
_NEW: Any = tuple.__new__  # _NEW(Person, (...)): a NamedTuple made without its Python __new__


class People(MutableSequence[Person]):
    """People by column; appending and reading in order are the cheap operations."""

    def __init__(self, people: Iterable[Person] = ()) -> None:
        self.clear()
        self.extend(people)

    def clear(self) -> None:
        self._chunks: list[str] = []  # CHUNK ids each, joined by "\n"
        self._open: list[str] = []  # ids of the chunk being filled
        self._roles = bytearray()  # index into _role_names
        self._role_names: list[str] = [LEARNER, INSTRUCTOR]
        self._role_codes = {LEARNER: 0, INSTRUCTOR: 1}
        self._instances: array[int] | None = None  # index into _keys (0: none); None: all 0
        self._keys: list[str | None] = [None]
        self._key_codes: dict[str | None, int] = {None: 0}
        self._run_starts = array("Q")  # rows where a file's run of rows starts
        self._run_files = array("I")  # and that file (index into _file_names)
        self._file_names: list[str] = []
        self._file_codes: dict[str, int] = {}
        self._lines = array("I")
        self._rare: dict[int, tuple[str, str | None, bool]] = {}  # odd id, sis id, account_only
        # the two chunks last split (reading in order; a class file's rows may straddle two)
        self._cached: dict[int, list[str]] = {}

    # ------------------------------------------------------------------ writing

    @staticmethod
    def _code(codes: dict[str, int], names: list[str], value: str) -> int:
        code = codes.get(value)
        if code is None:
            code = codes[value] = len(names)
            names.append(value)
        return code

    def add(
        self,
        external_id: str,
        role: str,
        file: str,
        line: int,
        instance: str | None = None,
        sis_id: str | None = None,
        account_only: bool = False,
    ) -> None:
        """Append one person (``append`` without making the ``Person`` first)."""
        if "\n" in external_id or sis_id is not None or account_only:
            self._rare[len(self._roles)] = (external_id, sis_id, account_only)
            external_id = "" if "\n" in external_id else external_id
        code = self._role_codes.get(role)
        self._roles.append(self._code(self._role_codes, self._role_names, role)
                           if code is None else code)  # fmt: skip
        code = self._key_codes.get(instance)
        if code is None:
            code = self._code(self._key_codes, self._keys, instance)  # type: ignore[arg-type]
        if code or self._instances is not None:
            self._instance_column().append(code)
        self._run_of(file, 1)
        self._lines.append(line)
        self._open.append(external_id)
        if len(self._open) == CHUNK:
            self._chunks.append("\n".join(self._open))
            self._open = []

    def add_rows(
        self,
        file: str,
        ids: list[str],
        roles: list[str],
        lines: Sequence[int],
        instances: list[str | None],
    ) -> None:
        """Append people of one file, a column each (ids without line breaks)."""
        role_codes, key_codes = self._role_codes, self._key_codes
        distinct_roles, distinct_keys = set(roles), set(instances)
        for value in distinct_roles.difference(role_codes):
            self._code(role_codes, self._role_names, value)
        for key in distinct_keys.difference(key_codes):
            self._code(key_codes, self._keys, key)  # type: ignore[arg-type]
        self._run_of(file, len(ids))
        if len(distinct_roles) == 1:  # one role (a class file's learners): repeated in C
            self._roles.extend(bytes((role_codes[roles[0]],)) * len(roles))
        else:
            self._roles.extend(map(role_codes.__getitem__, roles))
        if self._instances is not None or any(instances):
            column = self._instance_column()
            if len(distinct_keys) == 1:  # one class: repeated in C
                column.extend(array("I", (key_codes[instances[0]],)) * len(instances))
            else:
                column.extend(map(key_codes.__getitem__, instances))
        self._lines.extend(lines)
        room = CHUNK - len(self._open)
        self._open.extend(ids[:room])
        for start in range(room, len(ids), CHUNK):
            self._chunks.append("\n".join(self._open))
            self._open = ids[start : start + CHUNK]
        if len(self._open) == CHUNK:
            self._chunks.append("\n".join(self._open))
            self._open = []

    def _instance_column(self) -> array[int]:
        """The instance column, made (all "no instance" so far) when a first row names one."""
        if self._instances is None:
            self._instances = array("I", bytes(4 * len(self._lines)))
        return self._instances

    def _run_of(self, file: str, rows: int) -> None:
        """*rows* more rows from *file* (appended before their other columns)."""
        code = self._file_codes.get(file)
        if code is None:
            code = self._code(self._file_codes, self._file_names, file)
        if not self._run_files or self._run_files[-1] != code:
            self._run_starts.append(len(self._lines))
            self._run_files.append(code)

    def _file(self, at: int) -> str:
        return self._file_names[self._run_files[bisect_right(self._run_starts, at) - 1]]

    def append(self, value: Person) -> None:
        origin = value.origin
        self.add(
            value.external_id, value.role, origin.file, origin.line, value.instance_key,
            value.sis_id, value.account_only,
        )  # fmt: skip

    def insert(self, index: int, value: Person) -> None:
        if index < len(self):
            raise TypeError("a roster's people only grow at the end")
        self.append(value)

    def __setitem__(self, index: object, value: object) -> None:
        raise TypeError("a roster's people are not replaced")

    def __delitem__(self, index: object) -> None:
        raise TypeError("a roster's people are not removed one by one (clear() them all)")

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._roles)

    def __eq__(self, other: object) -> bool:
        """Equal to any list, tuple or People holding the same people in the same order."""
        if not isinstance(other, People | list | tuple):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"People({list(self)!r})" if len(self) <= 10 else f"<People: {len(self)}>"

    def external_ids(self) -> Iterator[str]:
        """Every id in order, without making the people (what a plan looks up)."""
        ids = chain.from_iterable(chain((c.split("\n") for c in self._chunks), [self._open]))
        if not self._rare:
            return ids
        return (self._rare[at][0] if at in self._rare else ext for at, ext in enumerate(ids))

    def _ids_of_chunk(self, chunk: int) -> list[str]:
        if chunk == len(self._chunks):
            return self._open
        ids = self._cached.get(chunk)
        if ids is None:
            if len(self._cached) > 1:
                del self._cached[min(self._cached)]
            ids = self._cached[chunk] = self._chunks[chunk].split("\n")
        return ids

    def _person(self, at: int, external_id: str, file: str | None = None) -> Person:
        sis_id, account_only = None, False
        rare = self._rare.get(at) if self._rare else None
        if rare is not None:
            external_id, sis_id, account_only = rare
        return Person(
            external_id,
            self._role_names[self._roles[at]],
            Origin(self._file(at) if file is None else file, self._lines[at]),
            self._keys[self._instances[at]] if self._instances is not None else None,
            sis_id,
            account_only,
        )

    def __iter__(self) -> Iterator[Person]:
        if self._rare:  # odd ids, sis ids, account-only rows: a row at a time
            return self._each()
        return chain.from_iterable(map(self._people_between, *self._pieces()))

    def _pieces(self) -> tuple[list[int], list[int], list[str]]:
        """(start, end, file) of every run of one file's rows, cut where a chunk of ids ends
        (so that a statewide file's columns are sliced 4,096 rows at a time)."""
        size = len(self)
        cuts = sorted({*self._run_starts, *range(CHUNK, size, CHUNK)})
        ends = [*cuts[1:], size] if cuts else []
        files = [self._file(at) for at in cuts]
        return cuts, ends, files

    def _people_between(self, start: int, end: int, file: str) -> Iterator[Person]:
        """The people of rows *start* to *end* of *file* (no odd row among them), made in C
        loops: a tuple's own constructor, no Python call a row (a plan reads a million)."""
        roles = map(self._role_names.__getitem__, self._roles[start:end])
        origins = map(_NEW, repeat(Origin), zip(repeat(file), self._lines[start:end]))
        instances = self._instances
        keys: Iterable[str | None] = repeat(None)
        if instances is not None:
            keys = map(self._keys.__getitem__, instances[start:end])
        rows = zip(self.ids_between(start, end), roles, origins, keys, repeat(None), repeat(False))
        return map(_NEW, repeat(Person), rows)

    def _each(self) -> Iterator[Person]:
        starts, files, names = self._run_starts, self._run_files, self._file_names
        run, ends = -1, 0  # the file run of the current row, and where it ends
        for at, external_id in enumerate(chain.from_iterable(self._all_chunks())):
            while at >= ends:  # past every run that ends here (a file without rows: none)
                run += 1
                ends = starts[run + 1] if run + 1 < len(starts) else len(self)
            yield self._person(at, external_id, names[files[run]])

    def at_positions(self, at: Iterable[int]) -> Iterator[Person]:
        """The people at positions *at* (increasing), made in order: the file of each found
        by walking its runs, not by a search per row (a plan's 50,000 new accounts)."""
        starts, files, names = self._run_starts, self._run_files, self._file_names
        roles, role_names, lines, rare = self._roles, self._role_names, self._lines, self._rare
        instances, keys = self._instances, self._keys
        size, last_run = len(self), len(starts) - 1
        run, ends, file = -1, 0, ""
        chunk, ids = -1, self._open
        for position in at:
            if not 0 <= position < size:
                raise IndexError(position)
            while position >= ends:
                run += 1
                ends = starts[run + 1] if run < last_run else size
                file = names[files[run]]
            if position < starts[run]:
                raise ValueError("positions must increase")
            if position // CHUNK != chunk:
                chunk = position // CHUNK
                ids = self._ids_of_chunk(chunk)
            external_id, sis_id, account_only = ids[position % CHUNK], None, False
            if rare and position in rare:
                external_id, sis_id, account_only = rare[position]
            yield Person(
                external_id,
                role_names[roles[position]],
                Origin(file, lines[position]),
                keys[instances[position]] if instances is not None else None,
                sis_id,
                account_only,
            )

    def file_ranges(self) -> Iterator[tuple[str, int, int, str | None]]:
        """(file, first row, row after the last, the sis id of its first row) of each run of
        rows read from one file, in order, without making the people (the source guard)."""
        ends = [*self._run_starts[1:], len(self)] if len(self._run_starts) else []
        for start, end, code in zip(self._run_starts, ends, self._run_files, strict=True):
            rare = self._rare.get(start) if self._rare else None
            yield self._file_names[code], start, end, rare and rare[1]

    def placed_between(self, start: int, end: int) -> int:
        """How many of rows *start* to *end* (excluded) name a class (the source guard's count
        of a bundle's enrolments), counted in C."""
        if self._instances is None:
            return 0
        return (end - start) - self._instances[start:end].count(0)

    def ids_between(self, start: int, end: int) -> Iterator[str]:
        """The ids of rows *start* to *end* (excluded), a chunk's slice at a time (each chunk
        split once while rows are read in order: 4,000 class files of 250 rows share 245
        chunks; a statewide roster's ids are hashed twice without holding five million
        strings)."""
        return chain.from_iterable(self._slices(start, end))

    def _slices(self, start: int, end: int) -> Iterator[list[str]]:
        rare = self._rare
        for chunk in range(start // CHUNK, (end - 1) // CHUNK + 1 if end > start else 0):
            base = chunk * CHUNK
            ids = self._ids_of_chunk(chunk)
            low, high = max(start - base, 0), min(end - base, len(ids))
            if rare:
                ids = [rare[at][0] if at in rare else ids[at - base]
                       for at in range(base + low, base + high)]  # fmt: skip
                low, high = 0, len(ids)
            yield ids[low:high]

    def _all_chunks(self) -> Iterator[list[str]]:
        for chunk in range(len(self._chunks) + 1):
            yield self._ids_of_chunk(chunk)

    @overload
    def __getitem__(self, index: int) -> Person: ...
    @overload
    def __getitem__(self, index: slice) -> MutableSequence[Person]: ...
    def __getitem__(self, index: int | slice) -> Person | MutableSequence[Person]:
        if isinstance(index, slice):
            return People(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._person(index, self._ids_of_chunk(index // CHUNK)[index % CHUNK])

    def select(self, positions: Sequence[int]) -> Selection:
        return Selection(self, positions)


class Selection(Sequence[Person]):
    """Some of a sequence's people, by position (increasing), made when read."""

    def __init__(self, people: Sequence[Person], positions: Sequence[int]) -> None:
        self._people = people
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Person: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Person]: ...
    def __getitem__(self, index: int | slice) -> Person | Sequence[Person]:
        if isinstance(index, slice):
            return [self._people[p] for p in self._positions[index]]
        return self._people[self._positions[index]]

    def __iter__(self) -> Iterator[Person]:
        people = self._people
        return (people[p] for p in self._positions)
