"""Pulling OneRoster REST sources against the OneRoster sandbox over loopback HTTP.

What the pull relies on, and where it comes from:
- IMS OneRoster 1.1 REST binding and the 1.2 Rostering Service REST binding
  (imsglobal.org/sites/default/files/spec/oneroster/v1p2/rostering-restbinding/
  OneRosterv1p2RosteringService_RESTBindv1p0.html): collections under their own name
  (``{"users": [...]}``), ``limit``/``offset`` paging, ``X-Total-Count`` and ``Link`` headers,
  ``filter=dateLastModified>'...'``, the 1.2 base path ``/ims/oneroster/rostering/v1p2`` and
  the 1.2 ``roles`` array on users.
- Paging as naive clients do it and lose records: Moodle's enrol_oneroster
  (classes/local/endpoint.php: ``offset += limit``, stop when a page holds fewer than asked),
  the Untis OneRoster docs (same stop), a total that counts the page (pipeshub-ai PR #1219),
  an unordered server repeating and skipping records between pages (scim-for-keycloak #157),
  a published rel="next" link that skips a record (dev.gg4l.com/reference/pagination).
- Sign-in: ClassLink's sample client (vossenv/oneroster-python, classlink.py) signs OAuth
  1.0a HMAC-SHA256 in the Authorization header, query parameters in the base string;
  Infinite Campus moved OneRoster 1.1 to OAuth 2 client credentials (kb.infinitecampus.com,
  "OneRoster Migration Instructions"), with a token URL that carries ``?appName=``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kprov.api.limits import Limits
from kprov.errors import ConfigError, ExitCode, InputError
from kprov.rosters import RosterOptions, read_bundle
from kprov.rosters.api_source import OAUTH2, V11, V12
from kprov.rosters.collect import Collector
from kprov.rosters.model import Problem, Roster
from kprov.rosters.text import TextOptions
from kprov.sis.bundle import read_pulled
from kprov.sis.errors import SisCredentialsRefused, SisWireError
from kprov.sis.pull import pull
from tests.oneroster_box import (
    BAD,
    ROSTERS,
    SAMPLE,
    SECRET,
    oneroster_box,
    quick,
    secret_forms,
    source_for,
)


def _read(reader: Callable[[Collector], object]) -> tuple[Roster, list[Problem]]:
    problems: list[Problem] = []
    roster = Roster()
    reader(Collector(problems, roster))
    return roster, problems


def _shape(roster: Roster) -> tuple[object, ...]:
    """What a roster asks for, without where each line came from."""
    people = sorted((p.external_id, p.role, p.instance_key or "", p.account_only)
                    for p in roster.people)  # fmt: skip
    classes = {k: (c.title, c.start_date, c.end_date) for k, c in roster.classes.items()}
    return (people, classes, sorted(s.reason for s in roster.skipped_rows),
            sorted((p.external_id, p.instance_key or "") for p in roster.removals),
            roster.authoritative_classes, roster.complete)  # fmt: skip


@pytest.mark.parametrize(
    ("bundle", "version", "auth"),
    [
        (SAMPLE, V11, "oauth1"),
        (ROSTERS / "oneroster-1.1-bulk", V11, "oauth2"),  # Infinite Campus, Aeries: 1.1 + OAuth 2
        (ROSTERS / "oneroster-1.2", V12, "oauth2"),
        (ROSTERS / "oneroster-1.2", V11, "oauth1"),  # a 1.2 export served as 1.1
    ],
)
def test_a_pull_reads_exactly_as_the_same_csv_bundle(bundle: Path, version: str, auth: str) -> None:
    with oneroster_box(bundle, hostile="short", seed=3) as box:
        data = pull(source_for(box, version, auth=auth), quick())
    pulled, problems = _read(lambda c: read_pulled(data, c, TextOptions()))
    exported, expected_problems = _read(lambda c: read_bundle(bundle, c, RosterOptions()))
    assert problems == expected_problems == []
    assert _shape(pulled) == _shape(exported)
    assert pulled.people  # not vacuous


def test_the_next_page_starts_after_what_came_not_after_the_limit() -> None:
    """The server caps pages at 2 while 100 are asked: ``offset += limit`` would skip 98."""
    with oneroster_box(ROSTERS / "oneroster-1.2", page_cap=2) as box:
        data = pull(source_for(box, V12), quick())
    assert data.counts() == {"orgs": 2, "academicSessions": 3, "classes": 3, "users": 7,
                             "enrollments": 10}  # fmt: skip
    assert box.requests["GET enrollments"] == 6  # 5 pages of 2, and the empty page after


@pytest.mark.parametrize("mode", ["no-total", "bad-links", "no-sort"])
def test_without_a_total_or_with_lying_links_the_pull_is_still_complete(mode: str) -> None:
    with oneroster_box(ROSTERS / "oneroster-1.2", hostile=mode) as box:
        data = pull(source_for(box, V12), quick())
    assert data.counts()["enrollments"] == 10


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("no-envelope@users", "a 200 answer without 'users'"),
        ("shrink@enrollments", "X-Total-Count fell from 10 to 9"),
        ("wrong-total@enrollments", "more record(s) after the 2 that X-Total-Count announced"),
        ("shift@users", "was already on page 1: records moved between pages"),
        ("fail@classes", "HTTP 500: internal error while reading the page"),  # imsx_description
        ("dup-json@enrollments", "the name 'enrollments' appears twice"),
        ("redirect@orgs", "does not follow redirects"),
    ],
)
def test_an_incomplete_or_malformed_collection_is_an_error_naming_url_and_page(
    mode: str, words: str
) -> None:
    collection = mode.split("@")[1]
    with (
        oneroster_box(ROSTERS / "oneroster-1.2", hostile=mode) as box,
        pytest.raises(SisWireError) as caught,
    ):
        pull(source_for(box, V12), quick())
    message = caught.value.message
    assert words in message
    assert f"{box.url(V12)}/{collection}?" in message and f"of {collection})" in message
    assert caught.value.exit_code == ExitCode.API


def test_429s_are_waited_out_as_asked_and_each_resend_is_signed_afresh() -> None:
    """The sandbox refuses a replayed OAuth 1.0a nonce: a resend of the same signed request
    after a 429 would be a 401."""
    waits: list[float] = []
    with oneroster_box(ROSTERS / "oneroster-1.2", hostile="429=0.4", retry_after="7") as box:
        data = pull(source_for(box, V11), quick(waits=waits))
    assert data.counts()["enrollments"] == 10
    assert waits and max(waits) >= 7.0  # slept (injected) as long as Retry-After said


@pytest.mark.parametrize("auth", ["oauth1", "oauth2"])
def test_a_wrong_secret_is_a_configuration_error_and_the_secret_is_not_shown(auth: str) -> None:
    wrong = "Wrong-" + SECRET
    with (
        oneroster_box(SAMPLE, hostile="echo") as box,
        pytest.raises(SisCredentialsRefused) as caught,
    ):
        pull(source_for(box, V11, auth=auth), quick(env={"TEST_SIS_SECRET": wrong}))
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "HTTP 401" in str(caught.value) or "refused the client id" in str(caught.value)
    assert not any(form in str(caught.value) for form in secret_forms(wrong))


def test_a_server_echoing_what_it_was_sent_has_the_secret_and_token_scrubbed() -> None:
    with (
        oneroster_box(SAMPLE, hostile="echo,fail@users") as box,
        pytest.raises(SisWireError) as caught,
    ):
        pull(source_for(box, V11, auth=OAUTH2), quick())
    text = str(caught.value)
    assert "<redacted>" in text  # the bearer token and the secret, both echoed
    assert not any(form in text for form in secret_forms())


def test_a_record_holding_the_secret_is_refused_without_showing_it() -> None:
    with (
        oneroster_box(SAMPLE, hostile="secret-in-data") as box,
        pytest.raises(InputError) as caught,
    ):
        pull(source_for(box, V11), quick())
    text = str(caught.value)
    assert "field givenName holds the SIS client secret" in text and "of page 3 (GET" in text
    assert SECRET not in text


@pytest.mark.parametrize(("bundle", "what"), [("unknown_class", "class"), ("unknown_user", "user")])
def test_an_enrollment_naming_what_the_pull_does_not_hold_is_bad_data(
    bundle: str, what: str
) -> None:
    with oneroster_box(BAD / f"oneroster_{bundle}.zip") as box, pytest.raises(InputError) as caught:
        pull(source_for(box, V11), quick())
    assert caught.value.exit_code == ExitCode.INPUT
    assert f"names {what} " in str(caught.value) and "page " in str(caught.value)


def test_schools_keep_their_classes_enrollments_and_people(tmp_path: Path) -> None:
    bundle = shutil.copytree(ROSTERS / "oneroster-1.1-bulk", tmp_path / "two-schools")
    with (bundle / "orgs.csv").open("a") as orgs:
        orgs.write("o-2,,,Lakeside Middle,school,LMS,\n")
    with (bundle / "classes.csv").open("a") as classes:
        classes.write("k-art-1,,,Art 7,07,c-art,ART7-1,scheduled,Studio,o-2,t-fall,Art,,1\n")
    with (bundle / "enrollments.csv").open("a") as enrollments:
        enrollments.write("e-90,,,k-art-1,o-2,u-s3,student,false,,\n")
    with oneroster_box(bundle) as box:
        lakeside = pull(source_for(box, V11, schools=("o-2",)), quick())
        with pytest.raises(InputError, match="schools: 'o-9' is not among the orgs"):
            pull(source_for(box, V11, schools=("o-9",)), quick())
    roster, _ = _read(lambda c: read_pulled(lakeside, c, TextOptions()))
    assert set(roster.classes) == {"k-art-1"}
    assert {(p.external_id, p.instance_key) for p in roster.people if not p.account_only} == {
        ("u-s3", "k-art-1")
    }
    assert roster.authoritative_classes == {"k-art-1"}  # Hillside's classes are never pruned


def test_a_delta_reads_only_changes_and_states_no_class_whole() -> None:
    with oneroster_box(ROSTERS / "oneroster-1.1-bulk") as box:
        first = pull(source_for(box, V11, delta=True), quick())
        box.data.apply_bundle(ROSTERS / "oneroster-1.1-delta")
        second = pull(source_for(box, V11, delta=True), quick(), since=first.cursor)
    assert not first.delta and second.delta
    # orgs and terms in full (small; a new class needs its terms), the rest only changes
    assert second.counts() == {"orgs": 1, "academicSessions": 1, "classes": 0, "users": 2,
                               "enrollments": 4}  # fmt: skip
    assert "dateLastModified%3E%27" in second.collections["users"].pages[0].url
    roster, problems = _read(lambda c: read_pulled(second, c, TextOptions()))
    assert problems == [] and not roster.complete and not roster.authoritative_classes
    assert sorted((p.external_id, p.instance_key) for p in roster.removals) == [
        ("u-s2", "k-sci-1"),
        ("u-s4", "k-sci-2"),
    ]


def test_the_cursor_is_taken_before_the_pull_with_an_overlap() -> None:
    from datetime import UTC, datetime

    with oneroster_box(SAMPLE) as box:
        data = pull(source_for(box, V11), quick(now=lambda: datetime(2026, 9, 8, 2, 0, tzinfo=UTC)))
    assert data.cursor == "2026-09-08T01:50:00Z"


def test_no_secret_anywhere_is_a_configuration_error_naming_the_fixes() -> None:
    with oneroster_box(SAMPLE) as box, pytest.raises(ConfigError) as caught:
        pull(source_for(box, V11), quick(env={}))
    assert "TEST_SIS_SECRET" in str(caught.value) and "secret_file" in str(caught.value)


@pytest.mark.parametrize(
    ("bundle", "member", "words"),
    [
        ("oneroster_bad_role.zip", "users.csv:2:", "role 'wizard' is not one of"),
        ("oneroster_bad_date.zip", "academicSessions.csv:2:", "'2026-13-01' is not a real date"),
    ],
)
def test_what_the_reader_refuses_is_named_by_its_line_and_by_its_page(
    bundle: str, member: str, words: str
) -> None:
    """The line is the one `kprov oneroster pull --out` writes; the page is the SIS's."""
    with oneroster_box(BAD / bundle) as box:
        data = pull(source_for(box, V11), quick())
    _roster, problems = _read(lambda c: read_pulled(data, c, TextOptions()))
    (problem,) = [str(p) for p in problems]
    assert problem.startswith(f"{box.url(V11)}!{member}") and words in problem
    assert "of page 1 (GET " in problem


def test_one_token_per_source_renewed_before_it_expires() -> None:
    """kprov.api.tokens.TokenCache's discipline: renewed a tenth of its life before expiry,
    not after a refusal. Here each 429 makes the client wait 50 s (on a fake clock), and the
    run-level bound on refusals is raised so that three 429s in a row do not stop it."""
    patient = Limits(max_server_wait=1000.0)
    with oneroster_box(SAMPLE, hostile="429=0.5", retry_after="50", token_ttl=120) as box:
        data = pull(source_for(box, V11, auth=OAUTH2), quick(limits=patient))
        minted = box.tokens.issued if box.tokens else 0
    assert data.counts()["enrollments"] == 4
    assert minted >= 2 and box.requests["POST /oauth/token"] == minted  # never refused first


def test_server_text_in_a_page_error_is_scrubbed_whole_before_it_is_cut() -> None:
    """A name given twice, or a total that is no count, is the SIS's own text: a secret in it
    is redacted whole (strict_json cuts the name at 40 characters, which no scrubber knows)."""
    from types import SimpleNamespace

    from kprov.api.scrub import Scrubber
    from kprov.sis.paging import _items, _total

    long_secret = SECRET * 3  # longer than the 40 characters a DuplicateName message keeps
    scrubber = Scrubber()
    scrubber.add(long_secret)
    client: Any = SimpleNamespace(scrubber=scrubber)
    name = json.dumps(long_secret)
    raw = f'{{"users": [], {name}: 1, {name}: 2}}'.encode()
    with pytest.raises(SisWireError) as twice:
        _items(raw, "users", "GET page 1", client)
    with pytest.raises(SisWireError) as total:
        _total(f"\x1b[2J{long_secret}", "GET page 1", client)
    for caught in (twice, total):
        text = caught.value.message
        assert "<redacted>" in text and SECRET[:12] not in text and "\x1b" not in text
    assert "appears twice in one object" in twice.value.message
