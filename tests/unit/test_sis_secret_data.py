"""A pull whose data holds a credential is refused, naming the record and the field; its
text is looked at a group of records at a time, and a group that shows something is looked
at field by field, which names and decides (kprov/sis/pull.py)."""

from __future__ import annotations

import base64

import pytest

from kprov.api.scrub import Scrubber
from kprov.errors import KprovError
from kprov.rosters.api_source import ApiSource
from kprov.sis import pull
from kprov.sis.paging import Collection, PageRef

SECRET = "sis-client-secret-0123456789"


def users(count: int) -> Collection:
    records = [
        {"sourcedId": f"u-{n}", "givenName": "Anna", "orgs": [{"sourcedId": "org-1"}]}
        for n in range(count)
    ]
    return Collection("users", records, [PageRef(1, "https://sis.example/users", 0)])


def refusal(collection: Collection) -> str | None:
    scrubber = Scrubber()
    scrubber.add(SECRET)
    source = ApiSource.__new__(ApiSource)
    object.__setattr__(source, "url", "https://sis.example/ims/oneroster/v1p1")
    try:
        pull._refuse_secrets(source, {"users": collection}, scrubber)
    except KprovError as refused:
        return " ".join([refused.message, *getattr(refused, "problems", [])])
    return None


@pytest.mark.parametrize("at", [0, pull.GROUP - 1, pull.GROUP, 3 * pull.GROUP + 7])
@pytest.mark.parametrize(
    "form", [SECRET, SECRET.upper(), base64.b64encode(SECRET.encode()).decode()]
)
def test_a_secret_in_any_record_of_any_group_is_found_and_named(at: int, form: str) -> None:
    collection = users(4 * pull.GROUP)
    collection.records[at]["orgs"][0]["sourcedId"] = f"x {form} y"
    found = refusal(collection)
    assert found is not None and "field orgs.sourcedId holds the SIS client secret" in found
    assert f"record {at + 1} of page 1" in found


def test_a_secret_that_only_two_fields_spell_together_is_not_a_refusal() -> None:
    collection = users(pull.GROUP)
    half = len(SECRET) // 2
    collection.records[5]["sourcedId"], collection.records[5]["givenName"] = (
        SECRET[:half],
        SECRET[half:],
    )
    assert refusal(collection) is None
    assert refusal(users(2 * pull.GROUP + 1)) is None
