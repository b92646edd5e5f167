"""Where credentials may go: https anywhere, plain http only to this machine (a sandbox).

Hosts are read with two real URL parsers (the standard library's and urllib3's, which is what
``requests`` connects with); when they disagree about the host, the URL is refused rather than
guessed at. Userinfo (``http://localhost:1@10.0.0.9/v0``), backslashes, whitespace, queries
and fragments are refused outright: a credential URL never needs them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from kprov.errors import ConfigError

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class UnsafeUrl(ConfigError):
    """A URL kprov would send credentials to is not https (or loopback http), or is ambiguous."""


@dataclass(frozen=True)
class Endpoint:
    """The parts of a checked URL that messages need: ``host:port`` names where a call went."""

    scheme: str
    host: str
    port: int

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (a trailing dot and any case allowed)."""
    name = host.lower().strip("[]")
    name = name[:-1] if name.endswith(".") else name
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_credential_url(url: str, what: str = "base URL") -> str:
    """*url* without a trailing slash, if kprov may send credentials to it; else UnsafeUrl.

    *what* names the setting in the message ("base URL", "token URL").
    """
    text = url.strip()
    endpoint = parse_endpoint(text, what)
    if endpoint.scheme == "http" and not is_loopback(endpoint.host):
        raise UnsafeUrl(
            f"{what} {shown_url(text)!r} uses plain http to {endpoint.host}, a host other than "
            "this machine",
            hint="Use https:// for a real API; plain http is allowed only for a local sandbox "
            "(localhost, 127.0.0.1, ::1).",
        )
    return text.rstrip("/")


def check_token_url(url: str) -> str:
    """A token URL may carry a query (Infinite Campus: ``/campus/oauth2/token?appName=X``); the
    rest is checked as every credential URL is (https, or http to this machine)."""
    base, sep, query = url.strip().partition("?")
    checked = check_credential_url(base, "token_url")
    if sep and (not query or any(c.isspace() or ord(c) < 32 or c in "#\\" for c in query)):
        raise ConfigError(f"token_url {shown_url(url)!r} has an empty or unusable query")
    return f"{checked}?{query}" if sep else checked


def check_webhook_url(url: str, what: str = "notify URL") -> str:
    """*url*, if kprov may post a run's summary to it: the credential rules (https, or plain
    http to this machine; no user name, no ambiguity), except that a query is allowed (Teams
    and other workflow webhooks carry their signature in one). The URL itself is a
    credential: messages name only its scheme and host (``webhook_host``)."""
    text = url.strip()
    bad = _refusal_reason(text, allow_query=True)
    shown = webhook_host(text)
    if bad:
        raise UnsafeUrl(
            f"{what} {shown!r} {bad}",
            hint="Give the incoming-webhook URL exactly as the chat service shows it.",
        )
    parts = urlsplit(text)
    if parts.scheme.lower() == "http" and not is_loopback(parts.hostname or ""):
        raise UnsafeUrl(
            f"{what} {shown!r} uses plain http to a host other than this machine",
            hint="Use https:// (plain http is allowed only to localhost, for a relay).",
        )
    return text


def webhook_host(url: str) -> str:
    """Scheme and host of a webhook URL, all that may be printed of it (its path and query
    are the secret that lets anyone post to the channel)."""
    origin = url_origin(url)
    return origin if origin.startswith("<") else f"{origin}/..."


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of *url*, nothing else (no user, path or query)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unreadable URL>"
    return f"{parts.scheme or '?'}://{host}{port}"


def shown_url(url: str) -> str:
    """*url* fit to print: whatever sits before an '@' in its authority (a user name, a
    password) is replaced, so a credential written into a URL never reaches output."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "<hidden>@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


def parse_endpoint(url: str, what: str = "URL") -> Endpoint:
    """Scheme, host and port of *url*, refusing anything two parsers could read differently."""
    bad = _refusal_reason(url)
    if bad:
        raise UnsafeUrl(
            f"{what} {shown_url(url)!r} {bad}",
            hint="Give the full versioned URL, e.g. https://api.knewton.com/v0",
        )
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return Endpoint(scheme=parts.scheme.lower(), host=host, port=port)


def _refusal_reason(url: str, *, allow_query: bool = False) -> str | None:
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "is empty or contains whitespace or control characters"
    if "\\" in url:
        return "contains a backslash"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"cannot be read as a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "names no host"
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return "contains a user name or password before the host (user@host is refused)"
    if parts.fragment or url.rstrip().endswith("#"):
        return "contains a fragment"
    if not allow_query and (parts.query or url.rstrip().endswith("?")):
        return "contains a query or fragment"
    if port == 0:
        return "names port 0"
    from urllib3.util import parse_url

    try:
        other = parse_url(url)
    except ValueError as exc:
        return f"cannot be read as a URL ({exc})"
    theirs = (other.host or "").lower().strip("[]")
    if theirs != parts.hostname.lower() or (other.port or None) != (port or None):
        return "is read differently by different URL parsers"
    return None
