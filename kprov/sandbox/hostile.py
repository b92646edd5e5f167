"""Hostile modes: the sandbox as the servers and proxies kprov must survive, seeded and opt-in.

Each mode fires on a share of the requests it concerns (``MODE=RATE``, 1.0 when no rate is
given), drawn from one seeded generator, so a failing run can be replayed. The modes are
documented in ``MODES`` (and in ``kprov sandbox serve --help``). Modes that answer *instead*
of the API apply nothing; ``stall``, ``trickle`` and the id distortions apply the request and
then spoil the answer, which is the worse case for a client.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import random
import threading
from collections.abc import Mapping
from typing import Any

from kprov.sandbox import hostile_wire
from kprov.sandbox.store import SandboxError

MODES: dict[str, str] = {
    "reorder": "shuffle POST /batch answer items (each still names its external id)",
    "reorder-noid": "shuffle batch items and drop their external_user_id: unverifiable",
    "noid": "drop external_user_id from batch items, order kept (legal per the reference)",
    "wrong-id": "a batch item names an external id that was not requested",
    "dup-id": "two batch items carry the same account id",
    "bad-uuid": "ids in answers are not UUIDs",
    "newline-id": "ids in answers are UUIDs followed by a newline (a regex's '$' takes them)",
    "climbing-id": "created instance/registration ids climb out of their path (../accounts/<id>)",
    "missing-id": "answers lack their id (created items, accounts/current, batch items)",
    "reused-id": "created registrations answer the id of the first one handed out",
    "collide": "GET /accounts/current answers one account, without external_user_id, to all",
    "collide-token": "token answers carry one account_id (the first handed out) for every user",
    "token-crlf": "token answers carry an access_token with CR/LF and non-ASCII in it",
    "token-expiry": "token answers carry an absurd expires_in (a 400-digit number, text...)",
    "refresh-fail": "refresh_token grants answered 500, 422 or 200 without an access_token",
    "refuse": "refuse registrations and account creations with trap 422/409 (nothing applied)",
    "dialect-verbose": "word real refusals another way (long sentences)",
    "dialect-terse": "word real refusals another way (few words)",
    "dialect-409": "answer duplicates and existing registrations with 409 Conflict",
    "echo": "API error answers (400) echo the Authorization header, credentials and body",
    "echo-html": "the same echo, as a text/html page",
    "echo-token": "token answers (400) echo the Basic credentials and the form body",
    "echo-token-html": "the same echo, as an HTML page that escapes what it quotes",
    "redirect": "API calls answered 307 to another host (https or plain http)",
    "redirect-token": "token requests answered 307 to another host",
    "trickle": "API answers (headers and body) sent one byte every trickle interval",
    "trickle-body": "API answers: headers at once, then the body one byte at a time",
    "trickle-token": "token answers trickled one byte at a time",
    "stall": "API calls applied, then never answered",
    "stall-token": "token requests never answered",
    "html": "502/503 HTML pages from a 'proxy' (nothing applied)",
    "html-404": "DELETE calls answered by a 'proxy' 404 HTML page (nothing applied)",
    "huge-retry-after": "429 with Retry-After: 100000",
    "huge-rate-delay": "429 token-limited with X-Knewton-Rate-Delay: 100000000 (ms)",
    **hostile_wire.WIRE_MODES,
}

DIALECTS: dict[str, dict[str, tuple[int, str]]] = {
    "dialect-verbose": {
        "duplicate_account": (422, "An account with external_user_id '{ext}' already exists"),
        "already_registered": (
            422,
            "This account is already registered as {existing_type} in this learning instance",
        ),
        "instance_unavailable": (422, "learning instance does not exist or is closed"),
        "account_unavailable": (422, "Account does not exist or has been disabled"),
        "instance_full": (422, "learning instance already has the maximum of 500 registrations"),
        "account_full": (422, "account already holds the maximum of 500 registrations"),
    },
    "dialect-terse": {
        "duplicate_account": (422, "external_user_id already taken"),
        "already_registered": (422, "registration already exists"),
        "instance_unavailable": (422, "unknown learning_instance_id"),
        "account_unavailable": (422, "unknown account_id"),
        "instance_full": (422, "registration limit reached"),
        "account_full": (422, "registration limit reached"),
    },
    "dialect-409": {
        "duplicate_account": (409, "Conflict: account already exists"),
        "already_registered": (409, "Conflict: already registered as {existing_type}"),
        "instance_unavailable": (422, "learning instance is closed"),
        "account_unavailable": (422, "account is disabled"),
        "instance_full": (422, "maximum registrations exceeded"),
        "account_full": (422, "maximum registrations exceeded"),
    },
}

HTML_422 = "<html><head><title>422 Unprocessable Entity</title></head><body>Sorry.</body></html>"
# Refusals of requests that were NOT applied: none of them means "already there".
REGISTRATION_TRAPS: list[tuple[int, str | None]] = [
    (422, "learning instance does not exist or is closed"),
    (422, "account already holds the maximum of 500 registrations"),
    (422, "learning instance holds the maximum of 500 registrations"),
    (422, "account_id does not name an active account"),
    (422, "cannot register: the learning instance has already closed"),
    (422, "registration already exists in another learning instance"),
    (422, "account is not registered in this learning instance"),
    (422, "Unprocessable Entity"),
    (409, None),  # an empty 409
    (422, HTML_422),
]
ACCOUNT_TRAPS: list[tuple[int, str | None]] = [
    (422, "external_user_id must be 1 to 256 characters"),
    (422, "account limit reached for this partner"),
    (422, "external_user_id is not valid"),
    (422, "Duplicate account with {ext}"),  # a lie: recovering it finds no such account
    (409, None),
]
PROXY_PAGE = (
    "<html><head><title>{status} {phrase}</title></head><body><center><h1>{status} {phrase}"
    "</h1></center><hr><center>nginx</center></body></html>"
)


def parse_modes(spec: str) -> dict[str, float]:
    """'reorder,trickle-token=0.5' -> {'reorder': 1.0, 'trickle-token': 0.5}."""
    modes: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, rate = part.partition("=")
        if name not in MODES:
            raise ValueError(f"unknown hostile mode {name!r}; modes: {', '.join(MODES)}")
        try:
            value = float(rate) if rate else 1.0
        except ValueError:
            raise ValueError(f"hostile mode {part!r}: the rate must be a number") from None
        if not 0 < value <= 1:
            raise ValueError(f"hostile mode {part!r}: the rate must be above 0 and at most 1")
        modes[name] = value
    return modes


class Reply:
    """An answer made up by a hostile mode (nothing was applied)."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        if body is None:
            self.payload = b""
        elif isinstance(body, str):
            self.payload = body.encode()
            self.headers.setdefault("Content-Type", "text/html; charset=utf-8")
        else:
            self.payload = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json")


class Hostility:
    """The hostile modes in force, and one seeded generator that decides when they fire."""

    def __init__(
        self,
        modes: Mapping[str, float] | str = "",
        *,
        seed: int | None = None,
        trickle: float = 2.0,
    ) -> None:
        self.modes = parse_modes(modes) if isinstance(modes, str) else dict(modes)
        for name in self.modes:
            if name not in MODES:
                raise ValueError(f"unknown hostile mode {name!r}")
        self.trickle_interval = trickle
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._collided: dict[str, str] = {}  # mode -> the one account id it hands everyone

    def __bool__(self) -> bool:
        return bool(self.modes)

    def fires(self, mode: str) -> bool:
        rate = self.modes.get(mode)
        if not rate:
            return False
        with self._lock:
            return self._rng.random() < rate

    def pick(self, options: list[Any]) -> Any:
        with self._lock:
            return self._rng.choice(options)

    def install(self, store: Any) -> None:
        """Let the store word refusals in a dialect and trap batch items."""
        store.reword = self.reword
        store.item_trap = self.item_trap

    # ------------------------------------------------------------ before applying

    def before_token(self, headers: Mapping[str, str], raw: bytes) -> Reply | None:
        reply = hostile_wire.before_token(self, headers)
        if reply is not None:
            return reply
        if self.fires("redirect-token"):
            return self._redirect("/v0/oauth/token")
        if self.fires("echo-token"):
            return Reply(400, {"message": echo_text(headers, raw), "error_id": "echo"})
        if self.fires("echo-token-html"):
            text = html.escape(echo_text(headers, raw))
            return Reply(400, f"<html><head><title>400 Bad Request</title></head><p>{text}</p>")
        if b"grant_type=refresh_token" in raw and self.fires("refresh-fail"):
            return self.pick(
                [
                    Reply(500, PROXY_PAGE.format(status=500, phrase="Internal Server Error")),
                    Reply(422, {"message": "refresh_token already used", "error_id": "reuse"}),
                    Reply(200, {"token_type": "bearer", "expires_in": 3599}),
                ]
            )
        return None

    def before_api(
        self, label: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> Reply | None:
        reply = hostile_wire.before_api(self, label)
        if reply is not None:
            return reply
        if self.fires("redirect"):
            return self._redirect(path)
        if self.fires("html"):
            status, phrase = self.pick([(502, "Bad Gateway"), (503, "Service Unavailable")])
            return Reply(status, PROXY_PAGE.format(status=status, phrase=phrase))
        if label.startswith("DELETE ") and self.fires("html-404"):
            return Reply(404, PROXY_PAGE.format(status=404, phrase="Not Found"))
        if self.fires("echo"):
            text = echo_text(headers, raw)
            return Reply(
                400,
                {"message": text, "error_id": headers.get("Authorization", "")},
                {"X-Echo-Authorization": headers.get("Authorization", "")},
            )
        if self.fires("echo-html"):
            text = html.escape(echo_text(headers, raw))  # as a real error page quotes it
            return Reply(400, f"<html><head><title>400 {text}</title></head><body>{text}</body>")
        if self.fires("huge-retry-after"):
            return Reply(
                429,
                {"message": "rate limit exceeded"},
                {"Retry-After": "100000", "X-Knewton-Rate-Exceeded": "ip-limited"},
            )
        if self.fires("huge-rate-delay"):
            return Reply(
                429,
                {"message": "rate limit exceeded"},
                {"X-Knewton-Rate-Exceeded": "token-limited", "X-Knewton-Rate-Delay": "100000000"},
            )
        if label in ("POST /registrations", "POST /accounts") and self.fires("refuse"):
            traps = REGISTRATION_TRAPS if label == "POST /registrations" else ACCOUNT_TRAPS
            return _trap_reply(self.pick(traps), _ext_of(raw))
        return None

    def _redirect(self, path: str) -> Reply:
        host = self.pick(["https://api.elsewhere.example", "http://api.elsewhere.example:8080"])
        return Reply(307, {"message": "moved"}, {"Location": host + path})

    def item_trap(self, body: Any) -> SandboxError | None:
        if not self.fires("refuse"):
            return None
        status, message = self.pick(ACCOUNT_TRAPS)
        ext = body.get("external_user_id", "") if isinstance(body, dict) else ""
        return SandboxError(status, (message or "").format(ext=ext))

    def reword(self, error: SandboxError) -> SandboxError:
        dialects = [d for d in DIALECTS if d in self.modes and error.kind in DIALECTS[d]]
        if not dialects or not self.fires(dialects[0]):
            return error
        status, template = DIALECTS[self.pick(dialects)][error.kind]
        facts = {"ext": "", "existing_type": "", **error.facts}
        return SandboxError(status, template.format(**facts), error.kind, **error.facts)

    # ------------------------------------------------------------- after applying

    def delivery(self, token: bool) -> str | None:
        """How to send this answer: 'trickle', 'trickle-body', 'stall' or None (at once)."""
        for mode in (
            ("stall-token", "trickle-token") if token else ("stall", "trickle", "trickle-body")
        ):
            if self.fires(mode):
                return mode.removesuffix("-token")
        return None

    def distort_token(self, answer: dict[str, Any], account_id: str) -> dict[str, Any]:
        """``collide-token``: every token answer names the first account it ever named;
        ``token-crlf`` / ``token-expiry``: fields no header or clock can take as they are."""
        if self.fires("token-crlf"):
            answer = {**answer, "access_token": answer["access_token"] + "\r\nX-Injected: é"}
        if self.fires("token-expiry"):
            answer = {**answer, "expires_in": self.pick([int("9" * 400), "soon", -5, None])}
        if not self.fires("collide-token"):
            return answer
        return {**answer, "account_id": self._collide("collide-token", account_id)}

    def _collide(self, mode: str, account_id: str) -> str:
        with self._lock:
            return self._collided.setdefault(mode, account_id)

    def distort(
        self, label: str, answer: Any, admin_id: str, headers: Mapping[str, str] | None = None
    ) -> Any:
        """Spoil a successful answer's ids, items, names or text, as the modes in force say."""
        if not isinstance(answer, dict):
            return answer
        answer = json.loads(json.dumps(answer))  # never touch the store's own dicts
        return hostile_wire.distort(
            self, label, self._distort(label, answer, admin_id), headers or {}
        )

    def _distort(self, label: str, answer: dict[str, Any], admin_id: str) -> Any:
        if label == "POST /batch":
            return self._distort_batch(answer)
        if label == "GET /accounts/current" and "id" in answer and self.fires("collide"):
            # A server (or a cache that ignores Authorization) that answers one account,
            # without saying whose, to every token.
            answer.pop("external_user_id", None)
            answer["id"] = self._collide("collide", answer["id"])
            return answer
        if "id" not in answer:
            return answer
        if self.fires("missing-id"):
            del answer["id"]
        elif self.fires("bad-uuid"):
            answer["id"] = "id-" + str(answer["id"])[:8]
        elif self.fires("newline-id"):
            answer["id"] = str(answer["id"]) + "\n"
        elif label == "POST /registrations" and self.fires("reused-id"):
            # A cache keyed on the path: a later removal would delete someone else's.
            answer["id"] = self._collide("reused-id", answer["id"])
        elif label in ("POST /registrations", "POST /learning-instances") and self.fires(
            "climbing-id"
        ):
            # Deleting this "registration" without quoting would disable an account for ever.
            target = answer.get("account_id") or admin_id
            answer["id"] = f"../accounts/{target}"
        return answer

    def _distort_batch(self, answer: dict[str, Any]) -> dict[str, Any]:
        items: list[dict[str, Any]] = answer.get("responses", [])
        bodies = [i["body"] for i in items if isinstance(i.get("body"), dict)]
        created = [b for b in bodies if "account_id" in b]
        if self.fires("wrong-id") and created:
            created[0]["external_user_id"] = str(created[0].get("external_user_id")) + "-stranger"
        if self.fires("dup-id") and len(created) > 1:
            created[1]["account_id"] = created[0]["account_id"]
        if self.fires("bad-uuid") and created:
            created[-1]["account_id"] = "acct-" + str(created[-1]["account_id"])[:8]
        if self.fires("newline-id"):
            for body in created:
                body["account_id"] = str(body["account_id"]) + "\n"
        if self.fires("missing-id") and created:
            del created[-1]["account_id"]
        drop_ids = self.fires("noid")
        if self.fires("reorder-noid"):
            drop_ids = True
            self._shuffle(items)
        elif self.fires("reorder"):
            self._shuffle(items)
        if drop_ids:
            for body in bodies:
                body.pop("external_user_id", None)
        return answer

    def _shuffle(self, items: list[Any]) -> None:
        with self._lock:
            original = list(items)
            for _ in range(5):  # a shuffle that changes nothing is no test
                self._rng.shuffle(items)
                if len(items) < 2 or items != original:
                    return


def echo_text(headers: Mapping[str, str], raw: bytes) -> str:
    """What a careless server or proxy says back: the headers and body it was sent."""
    auth = headers.get("Authorization", "")
    parts = [f"Authorization: {auth}"]
    if auth.startswith("Basic "):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            parts.append("credentials " + base64.b64decode(auth[6:]).decode())
    if raw:
        parts.append("body " + raw.decode("utf-8", "replace"))
    return "could not process the request; received " + "; ".join(parts)


def _ext_of(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    return str(body.get("external_user_id", "")) if isinstance(body, dict) else ""


def _trap_reply(trap: tuple[int, str | None], ext: str) -> Reply:
    status, message = trap
    if message is None:
        return Reply(status, None)
    if message.startswith("<html>"):
        return Reply(status, message)
    return Reply(status, {"message": message.format(ext=ext), "error_id": "trap"})
