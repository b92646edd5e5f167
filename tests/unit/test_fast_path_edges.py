"""Issue 24's fast paths against inputs their own tests shared assumptions with: each case
is one where a whole-block reading once disagreed with the one-by-one reading."""

from __future__ import annotations

from kprov.rosters.model import Origin, Person
from kprov.rosters.people import People


def test_people_after_a_file_without_rows_keep_their_own_file() -> None:
    """A class file of only a header hands over an empty run; the people after it (read a
    row at a time because one is odd: a bundle's account-only user) were named as coming
    from that empty file, and so were its duplicates and the classes it states."""
    people = People()
    people.add_rows("a.csv", ["s1", "s2"], ["learner"] * 2, [2, 3], [None, None])
    people.add_rows("empty.csv", [], [], [], [])
    people.add_rows("b.csv", ["s3"], ["learner"], [2], ["geo"])
    people.add("u1", "learner", "bundle/users.csv", 2, account_only=True)
    expected = [("a.csv", 2), ("a.csv", 3), ("b.csv", 2), ("bundle/users.csv", 2)]
    assert [tuple(p.origin) for p in people] == expected
    assert [tuple(people[i].origin) for i in range(len(people))] == expected
    assert list(people)[2] == Person("s3", "learner", Origin("b.csv", 2), "geo")
