"""Where readers put the people they find, one row at a time, checked as they stream.

Duplicates are found from one 8-byte digest per (id, instance), kept in 256 arrays rather
than a set of the ids themselves, so ten million rows are checked in a few hundred MB; the
lines of a duplicate are named by a second look at the rows that share a digest. People are
kept only when asked, and are let go as soon as the input is known to be refused.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from kprov.api_facts import MAX_ID_LENGTH
from kprov.rosters.model import Origin, Person, Problem, Roster, Skipped
from kprov.rosters.people import People
from kprov.rosters.validate import (
    FAST_ID,
    duplicate_problem,
    hash_external_id,
    id_problems,
    key_problems,
)

BUCKETS = 256
new_person: Any = tuple.__new__  # new_person(Person, (...)) skips the NamedTuple's __new__
new_origin: Any = tuple.__new__


class Collector:
    """Receives people, removals and skipped rows; validates ids and remembers digests."""

    def __init__(
        self,
        problems: list[Problem],
        roster: Roster,
        *,
        keep: bool = True,
        hash_key: bytes | None = None,
    ) -> None:
        self.problems = problems
        self.roster = roster
        self.keep = keep
        self.hash_key = hash_key
        self.check_pii = hash_key is None
        self.release()
        self.rows = 0  # people seen (kept or not)
        # set by a manifest for the file being read: its people join this instance / role
        self.force_instance: str | None = None
        self.force_role: str | None = None
        # set by a manifest entry's `id_prefix:`: every id the source gives (people, and the
        # classes a bundle or a class column names) is namespaced by it
        self.id_prefix = ""
        self.naming: DuplicateNamer | None = None
        self.good_keys: set[str] = set()  # instance keys checked already (a class has many rows)

    def still_keeping(self) -> bool:
        """Keep people only while the input can still be accepted."""
        if self.keep and self.problems:
            self.keep = False
            self.roster.people.clear()
        return self.keep

    def bad_id(self, external_id: str, file: str, line: int, column: int | None) -> bool:
        """Record what is wrong with *external_id* at file:line:column (the column when the
        reader knows it); False when it is a good id after all."""
        messages = id_problems(external_id, check_pii=self.check_pii)
        for message in messages:
            self.problems.append(Problem(file, line, message, column))
        return bool(messages)

    def bad_key(self, instance: str, file: str, line: int) -> bool:
        """Record what is wrong with an instance key a row names; False when it is fine."""
        if instance in self.good_keys:
            return False
        messages = key_problems(instance)
        for message in messages:
            self.problems.append(Problem(file, line, message))
        if not messages:
            self.good_keys.add(instance)
        return bool(messages)

    def prefixed(self, external_id: str, file: str, line: int) -> str:
        """*external_id* (already checked) with the source's prefix; "" (recorded) when the
        two together are longer than the API allows."""
        value = self.id_prefix + external_id
        if len(value) > MAX_ID_LENGTH:
            self.problems.append(
                Problem(
                    file,
                    line,
                    f"id {value[:40]!r}... is {len(value)} characters with its id_prefix; the "
                    f"API allows {MAX_ID_LENGTH}: use a shorter prefix",
                )
            )
            return ""
        return value

    def class_key(self, key: str) -> str:
        """A class key as read from a bundle, namespaced by the source's prefix."""
        return self.id_prefix + key

    def add(
        self,
        external_id: str,
        role: str,
        file: str,
        line: int,
        instance: str | None = None,
        *,
        account_only: bool = False,
        column: int | None = None,
    ) -> None:
        if self.force_instance is not None:
            instance = self.force_instance
        if self.force_role is not None:
            role = self.force_role
        if not FAST_ID.match(external_id) and self.bad_id(external_id, file, line, column):
            return
        if instance is not None and self.bad_key(instance, file, line):
            return
        if self.id_prefix:
            external_id = self.prefixed(external_id, file, line)
            if not external_id:
                return
        self.rows += 1
        if self.naming is not None:
            self.naming.see(external_id, instance, file, line)
            return
        digest = hash((external_id, instance))
        self.digests[digest & 0xFF].append(digest)
        if self.keep and self.still_keeping():
            sis_id = None
            if self.hash_key is not None:
                sis_id, external_id = external_id, hash_external_id(external_id, self.hash_key)
            people = self.roster.people
            if isinstance(people, People):
                people.add(external_id, role, file, line, instance, sis_id, account_only)
            else:
                people.append(Person(external_id, role, Origin(file, line), instance, sis_id,
                                     account_only))  # fmt: skip

    def removal(self, external_id: str, role: str, file: str, line: int, instance: str) -> None:
        """A delta's `tobedeleted` enrollment: an explicit removal, never implied by absence."""
        if not FAST_ID.match(external_id) and self.bad_id(external_id, file, line, None):
            return
        if self.bad_key(instance, file, line):
            return
        if self.id_prefix:
            external_id = self.prefixed(external_id, file, line)
            if not external_id:
                return
        sis_id = None
        if self.hash_key is not None:
            sis_id, external_id = external_id, hash_external_id(external_id, self.hash_key)
        if self.naming is None:
            self.roster.removals.append(
                Person(external_id, role, Origin(file, line), instance, sis_id)
            )

    def skip(self, file: str, line: int, external_id: str, reason: str) -> None:
        if self.naming is None:
            self.roster.skipped_rows.append(Skipped(Origin(file, line), external_id, reason))

    def duplicated_digests(self) -> set[int]:
        """Digests seen more than once (a digest collision only costs a second look)."""
        return repeated_digests(self.digests)

    def release(self) -> None:
        self.digests = [array("q") for _ in range(BUCKETS)]
        # each bucket's append, made once (a reader appends a digest a row, 4,000 files a run)
        self.digest_appends = [bucket.append for bucket in self.digests]


class DuplicateNamer:
    """Second look: the rows whose digest repeats, to name both lines of each duplicate."""

    def __init__(self, repeated: set[int], problems: list[Problem], hashed: bool) -> None:
        self.repeated = repeated
        self.problems = problems
        self.hashed = hashed
        self.first: dict[tuple[str, str | None], Origin] = {}

    def see(self, external_id: str, instance: str | None, file: str, line: int) -> None:
        if hash((external_id, instance)) not in self.repeated:
            return
        key = (external_id, instance)
        earlier = self.first.get(key)
        if earlier is None:
            self.first[key] = Origin(file, line)
            return
        person = Person(external_id, "", Origin(file, line), instance)
        self.problems.append(duplicate_problem(person, earlier))

    def see_people(self, people: Iterable[Person]) -> None:
        for person in people:
            raw = person.sis_id if self.hashed and person.sis_id else person.external_id
            self.see(raw, person.instance_key, person.origin.file, person.origin.line)


def repeated_digests(buckets: Iterable[Sequence[int]]) -> set[int]:
    """The digests that appear more than once, bucket by bucket (a first pass of 8-byte
    digests keeps memory small; only what repeats is looked at exactly afterwards)."""
    repeated: set[int] = set()
    for bucket in buckets:
        if len(set(bucket)) == len(bucket):
            continue
        seen: set[int] = set()
        for digest in bucket:
            if digest in seen:
                repeated.add(digest)
            seen.add(digest)
    return repeated
