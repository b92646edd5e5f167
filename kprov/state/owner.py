"""Whose state this is: the API it mirrors, and how its external ids are made.

A state directory is the local record of ONE API's accounts, made ONE way (plain ids, or ids
hashed with one key). Mixing them falsifies the record: a sandbox run would map fake account
ids into production's mapping, and a run without `--hash-ids` (or with another key) would see
nobody as known and create everyone again, for ever. So the first run that writes a state
directory records its owner in `owner.json`, and every later writer must match it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from kprov.errors import ConfigError
from kprov.state.files import replace_private

OWNER_FILE = "owner.json"
PLAIN_IDS = "plain"


def ids_made_with(hash_key: bytes | None) -> str:
    """How external ids are made: plain, or hashed with one key (named by a fingerprint that
    reveals nothing of the key: an HMAC of a fixed text under it)."""
    if hash_key is None:
        return PLAIN_IDS
    import hashlib
    import hmac

    return "hmac-sha256:" + hmac.new(hash_key, b"kprov id key", hashlib.sha256).hexdigest()[:16]


def _describe(key: str, value: str) -> str:
    if key == "ids":
        return "plain ids" if value == PLAIN_IDS else f"ids hashed with the key {value}"
    return value


def check_owner(
    state_dir: Path, owner: Mapping[str, str], *, inferred_ids: str = "", empty: bool = False
) -> None:
    """Record *owner* on first use; afterwards refuse (exit 3) a writer that differs.

    *owner* holds what the caller knows: ``base_url``, ``api_key``, and ``ids`` when it
    creates or plans accounts. *inferred_ids* describes the ids of a state made before owners
    were recorded (from its mapping), so an old state is not adopted the wrong way. An *empty*
    state (nothing in its mapping or registry) records nothing another setup could falsify,
    so it takes the new owner: a first run with a mistyped URL or key binds nothing.
    """
    path = state_dir / OWNER_FILE
    try:
        recorded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        recorded = {}
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{path} cannot be read ({exc}); it says which API this state belongs to",
            hint="Restore it from a backup, or remove it if you are sure which API this is.",
        ) from None
    if empty:
        recorded = {}
    elif not recorded and inferred_ids:
        recorded = {"ids": inferred_ids}
    for key, value in owner.items():
        theirs = recorded.get(key)
        if theirs is None or theirs == value or (key == "ids" and _same_kind(theirs, value)):
            continue
        what = {"base_url": "the API", "api_key": "the API key", "ids": "external ids"}[key]
        raise ConfigError(
            f"the state in {state_dir} belongs to another setup: {what} there is "
            f"{_describe(key, theirs)!r}, this run uses {_describe(key, value)!r}; nothing "
            "was sent",
            hint=_likely_typo(key, str(theirs), value) or _remedy(key),
        )
    merged = {**recorded, **{k: v for k, v in owner.items() if k not in recorded}}
    if merged.get("ids") == "hashed" and owner.get("ids", PLAIN_IDS) != PLAIN_IDS:
        merged["ids"] = owner["ids"]  # an old hashed state learns which key it was made with
    if merged != recorded or not path.exists():
        replace_private(path, json.dumps(merged, indent=1, sort_keys=True) + "\n")


def _same_kind(recorded: str, value: str) -> bool:
    """An old state inferred as 'hashed' (key unknown) takes the first key it is used with."""
    return recorded == "hashed" and value != PLAIN_IDS


def _likely_typo(key: str, theirs: str, ours: str) -> str | None:
    """Advice for the differences that are typos, not another API: a base URL that lost (or
    gained) its path (`/v0`), or a sandbox now on another port."""
    if key != "base_url":
        return None
    from urllib.parse import urlsplit

    recorded, used = urlsplit(theirs), urlsplit(ours)
    if (recorded.scheme, recorded.netloc) == (used.scheme, used.netloc):
        return (
            f"Same host, another path: did you mean {theirs}? The base URL ends with the API "
            "version (`/v0`). Fix the profile's base_url (or KPROV_BASE_URL); a new state "
            "directory is only for another API."
        )
    if recorded.hostname == used.hostname and recorded.hostname in ("127.0.0.1", "localhost"):
        return (
            f"The same machine on another port: this state was made with a sandbox on port "
            f"{recorded.port}. Use that port again (KPROV_SANDBOX_PORT={recorded.port} for the "
            "built-in sandbox), or start afresh with `kprov sandbox reset`."
        )
    return None


def _remedy(key: str) -> str:
    if key == "ids":
        return (
            "Run with the same id setting as before (`--hash-ids` and the same key, or without "
            "it): otherwise every person would get a second account. To start over another "
            "way, use a new state directory (KPROV_STATE_DIR)."
        )
    return (
        "Give each API (and each API key) its own state directory: set KPROV_STATE_DIR per "
        "job, or use the profile's default directory. The sandbox never shares production's."
    )


def registry_holds_records(state_dir: Path, names: tuple[str, ...]) -> bool:
    """Whether any of the journals *names* (the registry's, or the mapping) records something
    (a torn line counts too). An instance intent closed as abandoned records nothing: a run
    stopped before its first create reached the API (a mistyped base URL answered 404) leaves
    exactly that, and binds nothing."""
    for name in names:
        try:
            with (state_dir / name).open(encoding="utf-8", errors="replace", newline="") as f:
                f.readline()
                if _records_something(csv.reader(f)):
                    return True
        except FileNotFoundError:
            continue
        except (OSError, csv.Error):
            return True  # cannot tell: assume it holds records, so the check stays strict
    return any(state_dir.glob("*.torn-*"))


def _records_something(rows: Iterable[list[str]]) -> bool:
    """Any row past the header, but instance intents that were each abandoned."""
    open_intents: set[str] = set()
    for row in rows:
        status = row[-1] if row else ""
        if status == "intent":
            open_intents.add(row[0])
        elif status == "abandoned" and row[0] in open_intents:
            open_intents.discard(row[0])
        else:
            return True
    return bool(open_intents)
