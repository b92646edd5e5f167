"""A KnewtonClient against canned HTTP answers (``responses``): the API's URLs, ids in the
API's shape, a clock and sleep that only move when told, and token answers."""

from __future__ import annotations

from urllib.parse import parse_qs

import responses

from kprov.api.client import KnewtonClient
from kprov.api.pacing import RetryPolicy
from kprov.credentials import Secret

BASE = "https://api.example.test/v0"


TOKEN_URL = f"{BASE}/oauth/token"


SECRET = "s3cr3t-value-never-shown"


ACC1 = "828815a2-5038-4352-a681-82c96921ddf5"


ACC2 = "eff3b9cf-df82-477a-ac12-c0e01b90bf6e"


ACC5 = "d0effd52-c3a7-4a3c-827a-3ac5eaa049a1"


INST1 = "307b072c-6194-46fa-b226-68d40cee521f"


INST2 = "6f1f3c52-2b8e-11ee-be56-0242ac120002"  # version 1 (time-based): also an id


REG1 = "4c6d1e0a-94a2-4e53-9d2f-3f0d5a1b2c3d"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(clock: FakeClock | None = None, **kwargs: object) -> KnewtonClient:
    clock = clock or FakeClock()
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=0.01))
    return KnewtonClient(
        base_url=BASE,
        api_key="key-1",
        api_secret=Secret(SECRET),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def token_answer(n: int = 1, **extra: object) -> dict[str, object]:
    return {"access_token": f"acc-{n}", "refresh_token": f"ref-{n}", "expires_in": 3599, **extra}


def form_of(call: responses.Call) -> dict[str, str]:
    body = call.request.body
    text = body.decode() if isinstance(body, bytes) else str(body)
    return {k: v[0] for k, v in parse_qs(text).items()}
