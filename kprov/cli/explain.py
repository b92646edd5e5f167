"""What a command would run with, and where each setting came from (`kprov config show`).

Like `aws configure list`: one row per setting, its value and its source. Secrets are shown
only by where they come from, never by value, length or prefix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kprov.config import ENV_RATE_LIMITS, SANDBOX_PORT, Origin, Settings, quotas_for, sandbox_port
from kprov.errors import ConfigError


@dataclass(frozen=True)
class ResolvedSetting:
    key: str  # stable, for --json
    label: str  # for people
    value: str
    source: str  # flag, env, config-file, file, systemd-credential, keyring, built-in, ...
    location: str  # which option, variable, file or keyring entry

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["key"], data["label"]
        return data


def explain_settings(
    settings: Settings, env: Mapping[str, str] | None = None
) -> list[ResolvedSetting]:
    """Every setting a command would use, with its origin, in a fixed order."""
    env = os.environ if env is None else env
    origins = settings.origins

    def row(key: str, label: str, value: str, origin: Origin | None) -> ResolvedSetting:
        origin = origin or Origin("default")
        return ResolvedSetting(key, label, value, origin.kind, origin.location)

    from kprov.state.lock import LOCK_NAME

    config_origin = origins.get("config_file") or Origin("default")
    if not settings.config_path.exists():
        config_origin = Origin(config_origin.kind, f"{config_origin.location} (no such file)")
    rows = [
        row("profile", "profile", settings.profile.name, origins.get("profile")),
        row("config_file", "config file", str(settings.config_path), config_origin),
        row("base_url", "base URL", settings.profile.base_url, origins.get("base_url")),
        row("api_key", "API key", settings.profile.api_key, origins.get("api_key")),
        row("token_url", "token URL", settings.token_url, origins.get("token_url")),
        row("state_dir", "state dir", str(settings.state_dir), origins.get("state_dir")),
        row("mapping", "mapping", str(settings.mapping_path), origins.get("mapping")),
        row(
            "lock",
            "lock",
            str(settings.state_dir / LOCK_NAME),
            Origin("derived", f"state dir + {LOCK_NAME}"),
        ),
        _rate_limits(settings, env),
        _retries(env),
        *_run_rows(settings),
        _secret("api_secret", "API secret", settings, env),
        _secret("id_key", "id key (--hash-ids)", settings, env),
    ]
    if settings.is_builtin_sandbox:
        variable = "KPROV_SANDBOX_PORT"
        origin = (
            Origin("env", variable) if env.get(variable) else Origin("default", str(SANDBOX_PORT))
        )
        rows.append(row("sandbox_port", "sandbox port", str(sandbox_port(env)), origin))
    return rows


def _run_rows(settings: Settings) -> list[ResolvedSetting]:
    """The run ledger and the settings of unattended runs (the notify URL by host only)."""
    from kprov.api.urls import webhook_host
    from kprov.state.ledger import LEDGER_NAME

    run = settings.profile.run
    days = f"{run.history_days} days" if run.history_days else "kept for ever"
    hours = f"{run.auth_check_hours:g} hours" if run.auth_check_hours else "never"
    values = {
        "history_days": days,
        "auth_check_hours": hours,
        "notify": webhook_host(run.notify) if run.notify else "(none)",
        "notify_on": run.notify_on,
        "metrics_file": run.metrics_file or "(none)",
        "max_creations": (
            f"{run.max_creations} (none while the mapping holds under 100)"
            if run.max_creations.strip().endswith("%")
            else run.max_creations
        ),
        "removal_grace": f"{run.removal_grace} run(s)",
        "source_min_seen": f"{run.source_min_seen:g} %",
        "source_max_shrink": f"{run.source_max_shrink:g} %",
    }
    ledger = str(settings.state_dir / LEDGER_NAME)
    where = f"state dir + {LEDGER_NAME}"
    rows = [ResolvedSetting("ledger", "run ledger", ledger, "derived", where)]
    for key, value in values.items():
        origin = settings.origins.get(key) or Origin("default")
        label = key.replace("_", " ")
        rows.append(ResolvedSetting(key, label, value, origin.kind, origin.location))
    return rows


def _rate_limits(settings: Settings, env: Mapping[str, str]) -> ResolvedSetting:
    from kprov.api.pacing import DOCUMENTED_QUOTAS

    profile = settings.profile
    quotas = quotas_for(profile, env)
    if not quotas:
        value = "off"
    elif quotas == DOCUMENTED_QUOTAS:
        value = "documented quotas"
    else:
        value = ", ".join(f"{endpoint}={limit}/min" for endpoint, limit in sorted(quotas.items()))
    if env.get(ENV_RATE_LIMITS):
        origin = Origin("env", ENV_RATE_LIMITS)
    elif settings.is_builtin_sandbox:
        origin = Origin("built-in", "sandbox profile")
    elif profile.rate_limits_off or profile.rate_limits:
        origin = Origin("config-file", f"{settings.config_path}, profile {profile.name}")
    else:
        origin = Origin("default", "the API's documented quotas")
    return ResolvedSetting("rate_limits", "rate limits", value, origin.kind, origin.location)


def _retries(env: Mapping[str, str]) -> ResolvedSetting:
    from kprov.cli.session import retry_policy_from_env

    policy = retry_policy_from_env(env)
    value = f"{policy.max_attempts} attempts, backoff from {policy.base_delay:g} s"
    names = [n for n in ("KPROV_RETRY_MAX_ATTEMPTS", "KPROV_RETRY_BASE_DELAY") if env.get(n)]
    source, location = ("env", ", ".join(names)) if names else ("default", "")
    return ResolvedSetting("retries", "retries", value, source, location)


def _secret(key: str, label: str, settings: Settings, env: Mapping[str, str]) -> ResolvedSetting:
    from kprov.credentials import API_SECRET, ID_KEY, locate

    kind = API_SECRET if key == "api_secret" else ID_KEY
    try:
        lookup = locate(
            kind, settings.profile.name, env, builtin_sandbox=settings.is_builtin_sandbox,
            profile_file=settings.profile.secret_file if kind is API_SECRET else None,
        )  # fmt: skip
    except ConfigError as error:
        return ResolvedSetting(key, label, "(unusable)", "error", error.message)
    if lookup.source is None:
        needed = "" if kind is API_SECRET else "; needed only for --hash-ids"
        return ResolvedSetting(key, label, f"(none{needed})", "none", "; ".join(lookup.tried))
    return ResolvedSetting(key, label, "<hidden>", lookup.source.kind, lookup.source.location)
