"""Secrets are scrubbed from server text in every form they travel in, before any cut."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

from kprov.api.scrub import REDACTED, Scrubber

SECRET = 's3cr3t/with+odd=chars"here'
TOKEN = "tok-AbCdEf0123456789"


def scrubber() -> Scrubber:
    scrub = Scrubber()
    scrub.add_credentials("key-1", SECRET)
    scrub.add(TOKEN)
    return scrub


def test_every_wire_form_of_a_secret_is_replaced() -> None:
    basic = base64.b64encode(f"key-1:{SECRET}".encode()).decode()
    texts = [
        f"echo: Authorization: Basic {basic}",
        f"credentials key-1:{SECRET}",
        "body " + urlencode({"grant_type": "refresh_token", "refresh_token": SECRET}),
        f"path {quote(SECRET, safe='')}",
        json.dumps({"message": f"secret {SECRET}"}),
        f"Bearer {TOKEN}; again {TOKEN}",
        f"unpadded {basic.rstrip('=')}",
    ]
    scrub = scrubber()
    for text in texts:
        clean = scrub.scrub(text)
        assert SECRET not in clean and TOKEN not in clean and basic not in clean, clean
        assert REDACTED in clean


def test_scrubbing_comes_before_cutting() -> None:
    text = "x" * 290 + TOKEN  # a cut at 300 would leave half the token
    clipped = scrubber().clip(text, 300)
    assert TOKEN[:8] not in clipped
    assert len(clipped) <= 300


def test_tokens_registered_later_are_scrubbed_too_and_short_strings_are_left() -> None:
    scrub = Scrubber()
    assert scrub.scrub("nothing to hide") == "nothing to hide"
    scrub.add("ab")  # too short to be a secret; scrubbing it would mangle every message
    scrub.add("late-token-xyz")
    assert scrub.scrub("a late-token-xyz b ab") == f"a {REDACTED} b ab"


def test_thousands_of_tokens_are_scrubbed_quickly() -> None:
    import secrets
    import time

    scrub = Scrubber()
    tokens = [secrets.token_urlsafe(24) for _ in range(4000)]  # a recovery-heavy run
    for token in tokens:
        scrub.add(token)
    text = "echo " * 400 + tokens[1234] + " and " + tokens[7] + "!"
    started = time.perf_counter()
    for _ in range(20):
        clean = scrub.scrub(text)
    assert (time.perf_counter() - started) / 20 < 0.01
    assert clean.endswith(f"{REDACTED} and {REDACTED}!")


def test_a_secret_between_other_characters_is_still_found() -> None:
    scrub = scrubber()
    assert scrub.scrub(f"x{TOKEN}y{TOKEN}") == f"x{REDACTED}y{REDACTED}"
    assert scrub.scrub(TOKEN[:-1]) == TOKEN[:-1]  # a different string is left alone
