"""Posting one JSON document to an incoming webhook (Slack, Teams, a relay), within a deadline.

The URL is a credential (whoever has it can post to the channel), so nothing here prints
more of it than its scheme and host. It is checked like an API URL (https, or plain http to
this machine; ``api.urls.check_webhook_url``), redirects are never followed, and the whole
delivery -- every attempt, connect, send and answer -- ends within ``deadline`` seconds:
a notification must never hold up the exit of a cron job, nor change its exit code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from kprov.api.deadline import Deadline, DeadlineAdapter
from kprov.api.urls import check_webhook_url, webhook_host
from kprov.errors import KprovError

DEADLINE = 10.0  # seconds for the whole delivery, all attempts included
ATTEMPTS = 2  # a second try only for what may be passing (no answer, 429, 5xx)
MAX_ANSWER = 4096  # bytes of the answer read (for the status line only)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    problem: str = ""  # why not, with the URL reduced to its host


def post_json(
    url: str,
    document: Mapping[str, Any],
    *,
    deadline: float = DEADLINE,
    attempts: int = ATTEMPTS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST *document*; never raises. Delivered on a 2xx answer."""
    where = webhook_host(url)
    try:
        url = check_webhook_url(url)
    except KprovError as exc:  # any refusal is a reason not to send, said once
        return Delivery(False, 0, exc.message)
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    ends = clock() + deadline
    problem = ""
    tried = 0
    with requests.Session() as session:
        session.trust_env = True  # a proxy from the environment, as for the API
        adapter = DeadlineAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        while tried < attempts:
            left = ends - clock()
            if left <= 0.2:
                break
            tried += 1
            retry, problem = _attempt(session, url, body, where, left)
            if not problem:
                return Delivery(True, tried)
            if not retry:
                break
            pause = min(1.0, max(0.0, ends - clock() - 1.0))
            if pause <= 0:
                break
            sleep(pause)
    return Delivery(False, tried, problem or f"no time left to reach {where}")


def _attempt(
    session: requests.Session, url: str, body: bytes, where: str, left: float
) -> tuple[bool, str]:
    """(worth another try, problem or "")."""
    cut = Deadline(left)
    try:
        with cut:
            response = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": "kprov"},
                timeout=(min(5.0, left), min(10.0, left)),
                allow_redirects=False,
                stream=True,
            )
            try:
                next(response.iter_content(MAX_ANSWER), b"")
            finally:
                response.close()
    except requests.RequestException as exc:
        kind = "timed out" if isinstance(exc, requests.Timeout) or cut.expired else "failed"
        return True, f"the notification to {where} {kind} ({type(exc).__name__})"
    if cut.expired:
        return True, f"the notification to {where} timed out"
    status = response.status_code
    if 200 <= status < 300:
        return False, ""
    if 300 <= status < 400:
        return False, f"{where} answered {status} (a redirect; kprov does not follow it)"
    retry = status == 429 or status >= 500
    return retry, f"{where} answered {status}"  # its reason phrase is the server's text: not shown
