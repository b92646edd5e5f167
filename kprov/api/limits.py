"""Time and size bounds of every request, and of a run's patience with a refusing server.

``max_server_wait`` (KPROV_MAX_SERVER_WAIT, 120 s by default) bounds two things: one wait a
server asks for (a longer Retry-After ends the call at once), and how long an endpoint may
refuse every request (429, 5xx, no answer) before the run stops (``api.stall``). 120 s is two
of the API's one-minute quota windows: a server that meters honestly lets a request through
within one window, so two windows of nothing but refusals is a server that is not metering
but refusing, and holding the state lock longer helps nobody.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kprov.errors import ConfigError

ENV_MAX_SERVER_WAIT = "KPROV_MAX_SERVER_WAIT"
ENV_REQUEST_DEADLINE = "KPROV_REQUEST_DEADLINE"


@dataclass(frozen=True)
class Limits:
    """Time and size bounds of every request (seconds, bytes)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # silence allowed between two received bytes
    deadline: float = 60.0  # connect + headers + whole body, per attempt
    max_body: int = 16 * 1024 * 1024
    max_server_wait: float = 120.0  # one asked wait, and an endpoint's refusals in a row

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Limits:
        """KPROV_REQUEST_DEADLINE and KPROV_MAX_SERVER_WAIT (seconds) over the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, attr in (
            (ENV_REQUEST_DEADLINE, "deadline"),
            (ENV_MAX_SERVER_WAIT, "max_server_wait"),
        ):
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[attr] = float(raw)
                except ValueError:
                    values[attr] = -1.0
                if not values[attr] > 0:
                    raise ConfigError(f"{name} must be a number of seconds above 0, not {raw!r}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
