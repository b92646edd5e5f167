"""Settings of unattended runs: how long the ledger keeps history, when a quiet night checks
the credential, where failures are posted, where metrics are written (docs/history.md), and
the guards' limits and thresholds (docs/holds.md).

Each is a key of a profile in the config file, and a KPROV_* variable that overrides it (cron
jobs often have no config file); `--notify`, `--notify-on` and `--metrics-file`, and a
manifest's `notify:` and `notify_on:`, override both for one run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kprov.errors import ConfigError

DEFAULT_HISTORY_DAYS = 400
DEFAULT_AUTH_CHECK_HOURS = 20.0
NOTIFY_ON = ("failure", "always")
# The brakes' defaults (docs/holds.md), read by the guards, the request builders and --help.
DEFAULT_MAX_CREATIONS = "10%"  # of the people in the mapping
DEFAULT_MAX_REMOVALS = "10%"  # of the managed registrations (`sync --prune`)
DEFAULT_REMOVAL_GRACE = 1  # runs a person must be missing from before they are removed

ENV = {
    "history_days": "KPROV_HISTORY_DAYS",
    "auth_check_hours": "KPROV_AUTH_CHECK_HOURS",
    "notify": "KPROV_NOTIFY",
    "notify_on": "KPROV_NOTIFY_ON",
    "metrics_file": "KPROV_METRICS_FILE",
    "max_creations": "KPROV_MAX_CREATIONS",
    "removal_grace": "KPROV_REMOVAL_GRACE",
    "source_min_seen": "KPROV_SOURCE_MIN_SEEN",
    "source_max_shrink": "KPROV_SOURCE_MAX_SHRINK",
}
KEYS = tuple(ENV)


@dataclass(frozen=True)
class RunSettings:
    history_days: int = DEFAULT_HISTORY_DAYS  # runs older than this are pruned; 0 keeps all
    auth_check_hours: float = DEFAULT_AUTH_CHECK_HOURS  # 0: never check on a quiet night
    notify: str | None = None  # an incoming-webhook URL (a credential: never printed)
    notify_on: str = "failure"
    metrics_file: str | None = None
    max_creations: str = DEFAULT_MAX_CREATIONS  # the creation brake: N, or P% of the mapping
    removal_grace: int = DEFAULT_REMOVAL_GRACE
    source_min_seen: float = 50.0  # % of a source's ids seen before, below which it is held
    source_max_shrink: float = 50.0  # % of a source's ids gone, past which it is held

    def to_dict(self) -> dict[str, Any]:
        """The keys that differ from the defaults, for the config file."""
        default = RunSettings()
        return {k: getattr(self, k) for k in KEYS if getattr(self, k) != getattr(default, k)}


def parse_value(key: str, value: Any, where: str) -> Any:
    """One setting checked; ConfigError naming *where* it was written and what is allowed."""
    if key == "history_days":
        if isinstance(value, bool) or not _whole(value) or int(value) < 0:
            raise ConfigError(f"{where}: history_days must be a whole number of days >= 0")
        return int(value)
    if key == "auth_check_hours":
        number = _number(value)
        if number is None or number < 0:
            raise ConfigError(f"{where}: auth_check_hours must be a number of hours >= 0")
        return number
    if key == "notify_on":
        text = str(value).strip().lower()
        if text not in NOTIFY_ON:
            raise ConfigError(f"{where}: notify_on must be failure or always, not {value!r}")
        return text
    if key == "notify":
        from kprov.api.urls import check_webhook_url

        return check_webhook_url(str(value), f"{where}: notify URL") if value else None
    if key == "metrics_file":
        return str(value) if value else None
    if key == "max_creations":
        return limit_spec(value, where, "max_creations")
    if key == "removal_grace":
        if isinstance(value, bool) or not _whole(value) or int(float(value)) < 1:
            raise ConfigError(f"{where}: removal_grace must be a whole number of runs >= 1")
        return int(float(value))
    if key in ("source_min_seen", "source_max_shrink"):
        number = _number(str(value).strip().removesuffix("%"))
        if number is None or not 0 <= number <= 100:
            raise ConfigError(f"{where}: {key} must be a percentage from 0 to 100")
        return number
    raise KeyError(key)


def limit_spec(value: Any, where: str, key: str) -> str:
    """A limit as N or P% (what --max-removals and --max-creations take)."""
    text = str(value).strip()
    number = _number(text.removesuffix("%"))
    whole = text.endswith("%") or _whole(text)
    if (
        isinstance(value, bool)
        or number is None
        or number < 0
        or not whole
        or (text.endswith("%") and number > 100)
    ):
        raise ConfigError(f"{where}: {key} must be a number (12) or a share (5%), not {value!r}")
    return text


def from_profile(body: Mapping[str, Any], where: str) -> RunSettings:
    """The run settings a profile of the config file states."""
    found = {k: parse_value(k, body[k], f"{where} {k}") for k in KEYS if k in body}
    return replace(RunSettings(), **found)


def with_env(settings: RunSettings, env: Mapping[str, str]) -> tuple[RunSettings, set[str]]:
    """*settings* with the KPROV_* overrides applied, and the keys the environment set."""
    found = {k: parse_value(k, env[v], v) for k, v in ENV.items() if env.get(v)}
    return replace(settings, **found), set(found)


def _whole(value: Any) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
