"""The OneRoster sandbox is strict where real servers are: what it refuses, it must refuse.

Signatures follow RFC 5849 section 3.4 (base string, normalised parameters, HMAC key
``secret&``), checked by the sandbox's own code against what ``oauthlib`` signs; OneRoster 1.1
requires HMAC-SHA256. Tokens follow RFC 6749 section 4.4 (client credentials, Basic).
"""

from __future__ import annotations

import requests
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_TYPE_QUERY,
    Client,
)

from kprov.sandbox.oneroster_server import OneRosterSandbox
from tests.oneroster_box import CLIENT_ID, ROSTERS, SECRET, oneroster_box


def _signed(url: str, **options: object) -> tuple[str, dict[str, str]]:
    options.setdefault("signature_method", SIGNATURE_HMAC_SHA256)
    uri, headers, _ = Client(CLIENT_ID, client_secret=SECRET, **options).sign(url)
    return uri, headers


def _get(box: OneRosterSandbox, path: str, **options: object) -> requests.Response:
    uri, headers = _signed(box.url("1.1") + path, **options)
    return requests.get(uri, headers=headers, timeout=5)


def test_a_signed_request_is_read_once_and_only_as_signed() -> None:
    with oneroster_box(ROSTERS / "oneroster-1.2", page_cap=3) as box:
        url = box.url("1.1") + "/users?limit=100&offset=0"
        _uri, headers = _signed(url)
        good = requests.get(url, headers=headers, timeout=5)
        assert good.status_code == 200 and good.headers["X-Total-Count"] == "7"
        assert len(good.json()["users"]) == 3  # the cap, whatever the limit
        replayed = requests.get(url, headers=headers, timeout=5)
        assert replayed.status_code == 401 and "used already" in replayed.text
        _uri, headers = _signed(url)
        tampered = requests.get(url.replace("offset=0", "offset=3"), headers=headers, timeout=5)
        assert tampered.status_code == 401 and "does not match" in tampered.text
        assert _get(box, "/users", signature_method=SIGNATURE_HMAC_SHA1).status_code == 401
        assert _get(box, "/users", timestamp="1000000000").status_code == 401
        assert _get(box, "/users?limit=2", signature_type=SIGNATURE_TYPE_QUERY).status_code == 200


def test_tokens_are_minted_for_the_right_secret_and_expire() -> None:
    now = [1000.0]
    with oneroster_box(ROSTERS / "oneroster-1.2", token_ttl=60, clock=lambda: now[0]) as box:
        form = {"grant_type": "client_credentials"}
        wrong = requests.post(box.token_url, auth=(CLIENT_ID, "nope"), data=form, timeout=5)
        assert wrong.status_code == 401
        token = requests.post(box.token_url, auth=(CLIENT_ID, SECRET), data=form, timeout=5)
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        users = box.url("1.2") + "/users"
        assert requests.get(users, headers=bearer, timeout=5).json()["users"][0]["roles"]
        now[0] += 61
        expired = requests.get(users, headers=bearer, timeout=5)
        assert expired.status_code == 401 and "expired" in expired.text


def test_filters_select_by_date_and_unknown_ones_are_refused() -> None:
    with oneroster_box(ROSTERS / "oneroster-1.2", page_cap=50) as box:
        later = _get(box, "/classes?filter=dateLastModified%3E%272026-08-21T00%3A00%3A00Z%27")
        assert later.json() == {"classes": []} and later.headers["X-Total-Count"] == "0"
        earlier = _get(box, "/classes?filter=dateLastModified%3E%272026-08-01T00%3A00%3A00Z%27")
        assert len(earlier.json()["classes"]) == 3
        refused = _get(box, "/classes?filter=title~%27Bio%27")
        assert refused.status_code == 400
