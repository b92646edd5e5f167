"""More hostile modes: what a server or proxy does to text, ids and pacing (issue 18).

Secrets echoed in other reversible encodings, terminal escapes and formulas in messages and
names, 429 for ever with any spelling of Retry-After, ids named twice or upper-cased, POSTs
delivered twice. Seeded and opt-in like every mode (``hostile.Hostility`` draws for them);
the modes are listed in ``WIRE_MODES`` and merged into ``hostile.MODES``.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from kprov.sandbox.hostile import Hostility, Reply

WIRE_MODES: dict[str, str] = {
    "echo-encoded": "API answers carry the bearer token re-encoded (upper case, hex, base64...)",
    "echo-token-encoded": "token requests answered 400 quoting the secret re-encoded "
    "(lower-case %xx, &#43;, &#x2f;, base64, hex, \\u escapes)",
    "echo-token-split": "token requests answered 400 quoting the secret split across lines, "
    "as wrapped base64, base64 glued to a word, 0x hex, UTF-16 base64 and \\x escapes",
    "escape-text": "registrations refused (422, nothing applied) with terminal escapes, "
    "bidi overrides and a formula in the message",
    "escape-name": "learning instance answers name the instance with terminal escapes",
    "rate-forever": "every request answered 429, with Retry-After / X-Knewton-Rate-Delay "
    "spelled any way (1, 0.5, nan, -5, inf, 1e999, garbage)",
    "dup-name": "answers name their id twice (the real one first, a made-up one last)",
    "upper-id": "ids in answers are upper-cased",
    "replay": "every POST is delivered twice (an at-least-once proxy); the second's answer "
    "is returned",
}

# A message (or a name) no terminal or spreadsheet should ever act on.
POISON = (
    '=HYPERLINK("http://evil.example","x") \x1b]0;pwned\x07\x1b[2J\x1b[31m refused '
    "\u202eevil\u202c \x9b2J\u2066done"
)
RETRY_SPELLINGS: list[dict[str, str]] = [
    {"Retry-After": "1"},
    {"Retry-After": "0.5"},
    {"Retry-After": "nan"},
    {"Retry-After": "-5"},
    {"Retry-After": "soon"},
    {"Retry-After": ""},
    {"X-Knewton-Rate-Delay": "nan", "X-Knewton-Rate-Exceeded": "token-limited"},
    {"X-Knewton-Rate-Delay": "-100", "X-Knewton-Rate-Exceeded": "ip-limited"},
    {"X-Knewton-Rate-Delay": "250.5"},
    {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},  # a date in the past
]
HUGE_SPELLINGS: list[dict[str, str]] = [
    {"Retry-After": "inf"},
    {"Retry-After": "1e999"},
    {"Retry-After": "99999999999999999999"},
]


class RawJson:
    """An answer body written as is: JSON that ``json.dumps`` could never produce."""

    def __init__(self, text: str) -> None:
        self.payload = text.encode()


def _encodings(text: str) -> list[str]:
    raw = text.encode()
    return [
        "".join(f"%{b:02x}" for b in raw),
        quote(text, safe="").lower(),
        "".join(f"&#{ord(c)};" for c in text),
        "".join(f"&#x{ord(c):x};" for c in text),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        "".join(f"\\u{ord(c):04x}" for c in text),
        text.upper(),
    ]


def _split_forms(text: str) -> list[str]:
    """The secret as an echo that cuts or glues it shows it (all at once: one run tries all)."""
    raw = text.encode()
    wrapped = base64.b64encode(raw).decode()
    half = len(text) // 2
    return [
        f"{text[:half]}\n{text[half:]}",
        f"{text[:half]}\u200b{text[half:]}",
        "\n".join(wrapped[i : i + 8] for i in range(0, len(wrapped), 8)),
        "x" + wrapped,
        "tok_" + wrapped,
        "0x" + raw.hex(),
        base64.b64encode(text.encode("utf-16-le")).decode(),
        "".join(f"\\x{b:02x}" for b in raw),
    ]


def before_token(hostility: Hostility, headers: Mapping[str, str]) -> Reply | None:
    from kprov.sandbox.hostile import Reply

    if hostility.fires("rate-forever"):
        return _refusal(hostility)
    if hostility.fires("echo-token-encoded"):
        secret = _secret_of(headers.get("Authorization", ""))
        shown = hostility.pick(_encodings(secret)) if secret else "?"
        return Reply(400, {"message": f"bad client credentials: {shown}", "error_id": "enc"})
    if hostility.fires("echo-token-split"):
        secret = _secret_of(headers.get("Authorization", ""))
        shown = " | ".join(_split_forms(secret)) if secret else "?"
        return Reply(400, {"message": f"bad client credentials: {shown}", "error_id": "split"})
    return None


def before_api(hostility: Hostility, label: str) -> Reply | None:
    from kprov.sandbox.hostile import Reply

    if hostility.fires("rate-forever"):
        return _refusal(hostility)
    if label == "POST /registrations" and hostility.fires("escape-text"):
        return Reply(422, {"message": POISON, "error_id": "\x1b[2Jpoison"})
    return None


def _refusal(hostility: Hostility) -> Reply:
    from kprov.sandbox.hostile import Reply

    headers = hostility.pick(RETRY_SPELLINGS + HUGE_SPELLINGS)
    return Reply(429, {"message": "rate limit exceeded"}, headers)


def replays(hostility: Hostility, method: str) -> bool:
    return method == "POST" and hostility.fires("replay")


def distort(hostility: Hostility, label: str, answer: Any, headers: Mapping[str, str]) -> Any:
    """Spoil a successful answer the wire modes' way; *answer* is a copy the caller owns."""
    if not isinstance(answer, dict):
        return answer
    if "learning-instances" in label and "name" in answer and hostility.fires("escape-name"):
        answer["name"] = POISON + " " + str(answer["name"])
    if hostility.fires("upper-id"):
        _upper_ids(answer)
    if hostility.fires("echo-encoded"):
        bearer = headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer:
            answer["trace"] = "seen " + hostility.pick(_encodings(bearer))
    if hostility.fires("dup-name"):
        return _twice(answer)
    return answer


def _upper_ids(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("id", "account_id", "learning_instance_id") and isinstance(item, str):
                value[key] = item.upper()
            else:
                _upper_ids(item)
    elif isinstance(value, list):
        for item in value:
            _upper_ids(item)


def _twice(answer: dict[str, Any]) -> Any:
    """The answer with its id named a second time, last, holding an id nobody issued (Python
    keeps the last; another reader the first). Batch answers: each item's account_id."""
    fake = json.dumps(str(uuid.uuid4()))
    if "id" in answer:
        return RawJson(json.dumps(answer)[:-1] + f', "id": {fake}}}')
    items = answer.get("responses")
    if isinstance(items, list):
        parts = []
        for item in items:
            text = json.dumps(item)
            body = item.get("body") if isinstance(item, dict) else None
            if isinstance(body, dict) and "account_id" in body:
                inner = json.dumps(body)[:-1] + f', "account_id": {json.dumps(str(uuid.uuid4()))}}}'
                text = json.dumps({k: v for k, v in item.items() if k != "body"})[:-1]
                text += f', "body": {inner}}}'
            parts.append(text)
        rest = json.dumps({k: v for k, v in answer.items() if k != "responses"})[:-1]
        glue = ", " if rest != "{" else ""
        return RawJson(f'{rest}{glue}"responses": [{", ".join(parts)}]}}')
    return answer


def _secret_of(authorization: str) -> str:
    if not authorization.startswith("Basic "):
        return ""
    try:
        decoded = base64.b64decode(authorization[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]
