"""One HTTP exchange on a pooled connection, without ``requests.Session``'s work per request.

``Session.request`` cost ~0.6 ms of CPU a request here, more than the rest of the exchange:
it reads every proxy variable of the environment twice per request, merges cookies, hooks and
settings, and parses the URL again. kprov needs none of it per request: it talks to the same
checked base URL all run, sends no cookies, follows no redirects and reads no ``.netrc``.
``Wire`` builds each request itself and hands it to the same transport adapter as before
(``DeadlineAdapter``: the pool, TLS verification and the deadline's reach are unchanged). What
the environment says -- HTTP(S)_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE -- is read
once per scheme and host, by requests' own ``merge_environment_settings``, so it means what it
meant. The body is encoded as requests encodes it (JSON: UTF-8 bytes, NaN refused; a form:
text), with the same headers (Content-Length 0 on a POST or DELETE without a body).
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers

from kprov.api.deadline import DeadlineAdapter

FORM = "application/x-www-form-urlencoded"


class Wire:
    """Sends prepared requests through one ``DeadlineAdapter``; shared by all threads."""

    def __init__(self, *, pool_size: int) -> None:
        self.adapter = DeadlineAdapter(
            pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=0
        )
        self._environment = requests.Session()  # only to read the environment as requests does
        self._settings: dict[str, tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()
        headers = default_headers()  # Accept-Encoding and Connection as requests sends them
        headers["User-Agent"] = "kprov"
        headers["Accept"] = "application/json"
        self.headers: dict[str, str] = dict(headers)

    def close(self) -> None:
        self.adapter.close()
        self._environment.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        authorization: str | None,
        timeout: tuple[float, float],
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: str | None = None,
    ) -> requests.Response:
        """The answer, its body not read yet (``stream``): the caller reads it within a cap."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = prepared_url(url, params)
        merged: CaseInsensitiveDict[str] = CaseInsensitiveDict(self.headers)
        merged.update(headers)
        if authorization:
            merged["Authorization"] = authorization
        body = _body(merged, json, data)
        if body is not None:
            merged["Content-Length"] = str(
                len(body.encode("utf-8") if isinstance(body, str) else body)
            )
        elif method not in ("GET", "HEAD"):
            merged["Content-Length"] = "0"
        prepared.headers = merged
        prepared.body = body
        proxies, verify, cert = self._settings_for(prepared.url)
        return self.adapter.send(
            prepared, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

    def _settings_for(self, url: str) -> tuple[Any, Any, Any]:
        """Proxies, TLS verification and client certificate for *url*'s scheme and host, read
        from the environment the first time that host is used."""
        origin = url.split("/", 3)[:3]
        key = "/".join(origin)
        found = self._settings.get(key)
        if found is None:
            merged = self._environment.merge_environment_settings(url, {}, True, None, None)
            found = (merged["proxies"], merged["verify"], merged["cert"])
            with self._lock:
                self._settings[key] = found
        return found


def _body(
    headers: CaseInsensitiveDict[str], payload: Any, data: Mapping[str, str] | None
) -> bytes | str | None:
    """JSON as UTF-8 bytes; a form as requests sends it, percent-encoded text (ASCII, so
    http.client's Latin-1 encoding of a text body cannot change it)."""
    if payload is not None:
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(payload, allow_nan=False).encode("utf-8")
    if not data:
        return None
    headers.setdefault("Content-Type", FORM)
    return urlencode(list(data.items()))


@functools.lru_cache(maxsize=1024)
def prepared_url(url: str, params: str | None) -> str:
    """*url* (and a query string) as requests sends it: host IDNA-encoded, path re-quoted."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, params)
    return str(prepared.url)
