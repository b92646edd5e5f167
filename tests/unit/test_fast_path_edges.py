"""Issue 24's fast paths against inputs their own tests shared assumptions with: each case
is one where a whole-block reading once disagreed with the one-by-one reading."""

from __future__ import annotations

from pathlib import Path

from kprov.rosters.manifest import read_manifest
from kprov.rosters.model import Origin, Person
from kprov.rosters.people import People
from tests.manifests import manifest

ROSTERS = Path(__file__).resolve().parent.parent / "data" / "rosters"


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


def test_a_manifests_class_file_without_rows_takes_no_one_elses_first_line(
    tmp_path: Path,
) -> None:
    """A class with nobody yet (its file only a header), then a class file, and a OneRoster
    bundle with a user in no class: the next file's first learner was read back as coming
    from the empty file -- so a hold of the next file's export would not withhold it."""
    (tmp_path / "empty.csv").write_text("external_user_id\n")
    (tmp_path / "b.csv").write_text("external_user_id\nb-1\nb-2\n")
    read = read_manifest(
        manifest(
            tmp_path,
            "instances:\n"
            f"  - {{key: geo, name: Geo, people: [{{roster: {tmp_path / 'empty.csv'}}}]}}\n"
            f"  - {{key: bio, name: Bio, people: [{{roster: {tmp_path / 'b.csv'}}}]}}\n"
            f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.2'}\n",
        )
    )
    firsts = [(p.external_id, p.origin) for p in read.people][:2]
    assert firsts == [("b-1", Origin(str(tmp_path / "b.csv"), 2)),
                      ("b-2", Origin(str(tmp_path / "b.csv"), 3))]  # fmt: skip
