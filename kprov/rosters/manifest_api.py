"""The manifest's ``oneroster_api:`` entries, each key checked where it is written (file:line:col).

Kept apart from ``rosters.manifest`` so the manifest only lists the key and hands its nodes
here. A secret written into the manifest is refused with the three places it may live instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kprov.errors import ConfigError
from kprov.rosters.api_source import (
    BASE_SUFFIX,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    OAUTH1,
    OAUTH2,
    V11,
    V12,
    ApiSource,
)
from kprov.rosters.yaml_nodes import NodeReader
from kprov.rosters.yaml_reader import mapping_items, scalar_text

LIST_KEY = "oneroster_api"
KEYS = {"url", "version", "auth", "token_url", "scope", "client_id", "secret_file",
        "secret_env", "schools", "delta", "page_size", "graph_id", "start_date",
        "end_date"}  # fmt: skip
SECRET_KEYS = {"secret", "client_secret", "password", "api_secret"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BOOLEANS = {"true": True, "yes": True, "false": False, "no": False}
NO_INLINE_SECRET = (
    "never write the SIS secret into the manifest (manifests are copied, committed and "
    "mailed): use secret_file: PATH (a file only the job's user can read, chmod 600), "
    "secret_env: NAME (an environment variable), or leave both out to use the keyring"
)


def read_api_entries(
    reader: NodeReader, node: yaml.Node | None, folder: Path
) -> list[tuple[yaml.Node, dict[str, yaml.Node], ApiSource]]:
    """(entry node, its items, the source) of every entry that reads without problems."""
    found = []
    for entry in reader.sequence(node, LIST_KEY):
        items = _mapping(reader, entry)
        if not items:
            continue
        before = len(reader.problems)
        source = _source(reader, entry, items, folder)
        if source is not None and len(reader.problems) == before:
            found.append((entry, items, source))
    return found


def _mapping(reader: NodeReader, entry: yaml.Node) -> dict[str, yaml.Node]:
    """The entry's keys; an unknown key is named with the accepted ones, a secret key with
    where the secret belongs instead."""
    if not isinstance(entry, yaml.MappingNode):
        reader.problem(entry, f"a {LIST_KEY} entry must be a mapping (key: value lines)")
        return {}
    for key_node, _value in entry.value:
        key = scalar_text(key_node)
        if key in SECRET_KEYS:
            reader.problem(key_node, f"{LIST_KEY}: {key}: {NO_INLINE_SECRET}")
        elif key not in KEYS:
            reader.problem(
                key_node,
                f"unknown field {key!r} in a {LIST_KEY} entry; expected one of: "
                f"{', '.join(sorted(KEYS))}",
            )
    return mapping_items(entry)


def _source(
    reader: NodeReader, entry: yaml.Node, items: dict[str, yaml.Node], folder: Path
) -> ApiSource | None:
    what = LIST_KEY
    url = reader.text(items, "url", what, required=True, parent=entry).rstrip("/")
    client_id = reader.text(items, "client_id", what, required=True, parent=entry)
    if not url:
        return None
    try:
        from kprov.api.urls import check_credential_url

        check_credential_url(url, "url")
    except ConfigError as exc:
        reader.problem(items["url"], f"{what}: {exc.message}")
    inferred = next((v for v, suffix in BASE_SUFFIX.items() if url.endswith(suffix[-5:])), None)
    if inferred is None:
        reader.problem(
            items["url"],
            f"{what}: url must end at the version, e.g. https://sis.example.org"
            f"{BASE_SUFFIX[V11]} (1.1) or ...{BASE_SUFFIX[V12]} (1.2), not at a collection",
        )
    version = reader.text(items, "version", what) or inferred or V11
    if version not in (V11, V12):
        reader.problem(items["version"], f'{what}: version must be "1.1" or "1.2"')
    elif inferred is not None and version != inferred:
        reader.problem(items["version"], f"{what}: version {version} but the url is for {inferred}")
    token_url = reader.text(items, "token_url", what)
    auth = reader.text(items, "auth", what) or (OAUTH2 if token_url or version == V12 else OAUTH1)
    if auth not in (OAUTH1, OAUTH2):
        reader.problem(items["auth"], f"{what}: auth must be {OAUTH1} or {OAUTH2}")
    elif auth == OAUTH2 and not token_url:
        reader.problem(
            entry, f"{what}: OAuth 2 (OneRoster 1.2, or auth: oauth2) needs token_url: the "
            "SIS's token endpoint"
        )  # fmt: skip
    elif auth == OAUTH1 and token_url:
        reader.problem(items["token_url"], f"{what}: token_url is for OAuth 2; with OAuth "
                       "1.0a each request is signed instead (auth: oauth2 to use it)")  # fmt: skip
    elif token_url:
        _check_token_url(reader, items["token_url"], token_url)
    scope = reader.text(items, "scope", what)
    if scope and auth != OAUTH2:
        reader.problem(items["scope"], f"{what}: scope is for OAuth 2 only")
    secret_file = reader.text(items, "secret_file", what)
    secret_env = reader.text(items, "secret_env", what)
    if secret_file and secret_env:
        reader.problem(items["secret_env"], f"{what}: give secret_file or secret_env, not both")
    if secret_env and not _ENV_NAME.match(secret_env):
        reader.problem(items["secret_env"], f"{what}: secret_env names an environment variable "
                       "(letters, digits, _), not the secret itself")  # fmt: skip
    if client_id and any(ord(c) < 32 or ord(c) == 127 for c in client_id):
        reader.problem(items["client_id"], f"{what}: client_id contains a control character")
    return ApiSource(
        url=url,
        version=version,
        auth=auth,
        client_id=client_id,
        token_url=token_url,
        scope=scope,
        secret_file=str(folder / Path(secret_file).expanduser()) if secret_file else "",
        secret_env=secret_env,
        schools=_schools(reader, items.get("schools")),
        delta=_boolean(reader, items.get("delta")),
        page_size=_page_size(reader, items.get("page_size")),
        where=f"{reader.name}:{int(entry.start_mark.line) + 1}",
    )


def entry_defaults(
    reader: NodeReader,
    node: yaml.Node,
    items: dict[str, yaml.Node],
    defaults: tuple[str, str, str],
) -> tuple[str, str, str, tuple[bool, bool]]:
    """graph_id, start and end dates (the entry's, else the manifest's defaults), and which
    dates the entry set itself: what a bundle entry gives its classes."""
    graph_id = reader.text(items, "graph_id", LIST_KEY, default=defaults[0])
    if not graph_id:
        reader.problem(node, f"{LIST_KEY} entry has no graph_id (and defaults has none)")
    start = reader.text(items, "start_date", LIST_KEY, default=defaults[1])
    end = reader.text(items, "end_date", LIST_KEY, default=defaults[2])
    forced = ("start_date" in items, "end_date" in items)
    if all(forced):  # otherwise each class is checked with the dates it gets
        reader.dates_in_order(node, LIST_KEY, start, end)
    return graph_id, start, end, forced


def _check_token_url(reader: NodeReader, node: yaml.Node, url: str) -> None:
    from kprov.api.urls import check_token_url

    try:
        check_token_url(url)
    except ConfigError as exc:
        reader.problem(node, f"{LIST_KEY}: {exc.message}")


def _schools(reader: NodeReader, node: yaml.Node | None) -> tuple[str, ...]:
    schools = []
    for item in reader.sequence(node, f"{LIST_KEY}: schools"):
        text = scalar_text(item)
        if not text or not text.strip():
            reader.problem(item, f"{LIST_KEY}: schools lists org sourcedIds (non-empty text)")
            continue
        schools.append(text.strip())
    return tuple(schools)


def _boolean(reader: NodeReader, node: yaml.Node | None) -> bool:
    if node is None:
        return False
    text = (scalar_text(node) or "").strip().lower()
    if text not in _BOOLEANS:
        reader.problem(node, f"{LIST_KEY}: delta must be true or false")
        return False
    return _BOOLEANS[text]


def _page_size(reader: NodeReader, node: yaml.Node | None) -> int:
    if node is None:
        return DEFAULT_PAGE_SIZE
    text = (scalar_text(node) or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        reader.problem(node, f"{LIST_KEY}: page_size must be a whole number from 1 to "
                       f"{MAX_PAGE_SIZE} (the SIS may still send fewer)")  # fmt: skip
        return DEFAULT_PAGE_SIZE
    return int(text)
