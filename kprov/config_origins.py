"""Where each setting came from (flag, env, config file, built-in, derived, default), in the
precedence order ``config`` resolves them, for `kprov config show` (``Settings.origins``)."""

from __future__ import annotations

from collections.abc import Mapping

from kprov.config import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_CONFIG,
    ENV_MAPPING,
    ENV_PROFILE,
    ENV_STATE_DIR,
    ENV_TOKEN_URL,
    ConfigFile,
    Origin,
    Profile,
)


def origins_of(
    config: ConfigFile,
    name: str,
    stored: Profile | None,
    is_builtin_sandbox: bool,
    env: Mapping[str, str],
    **options: str | None,
) -> dict[str, Origin]:
    """Where each setting comes from, for `kprov config show` (*options*: the command line's
    config_option, profile_option and mapping_option)."""
    in_file = Origin("config-file", f"{config.path}, profile {name}")
    from_profile = Origin("built-in", "sandbox profile") if is_builtin_sandbox else in_file

    def env_or(variable: str, otherwise: Origin) -> Origin:
        return Origin("env", variable) if env.get(variable) else otherwise

    token_default = Origin("derived", "base URL + /oauth/token")
    token_origin = in_file if stored and stored.token_url else token_default
    origins = {
        "config_file": _origin(
            options["config_option"], "--config", env, ENV_CONFIG, "platform config dir"
        ),
        "profile": _origin(
            options["profile_option"], "--profile", env, ENV_PROFILE, "default",
            config_value=config.current_profile, config_where=f"{config.path}, current_profile",
        ),
        "base_url": env_or(ENV_BASE_URL, from_profile),
        "api_key": env_or(ENV_API_KEY, from_profile),
        "token_url": env_or(ENV_TOKEN_URL, token_origin),
        "state_dir": _origin(None, "", env, ENV_STATE_DIR, "platform data dir + profile"),
        "mapping": _origin(options["mapping_option"], "--mapping", env, ENV_MAPPING, "state dir"),
    }  # fmt: skip
    if origins["state_dir"].kind == "default":
        origins["state_dir"] = Origin("default", f"platform data dir, profiles/{name}")
    if origins["mapping"].kind == "default":
        origins["mapping"] = Origin("derived", "state dir + mapping.csv")
    return origins


def _origin(
    option: str | None,
    flag: str,
    env: Mapping[str, str],
    variable: str,
    default: str,
    *,
    config_value: str | None = None,
    config_where: str = "",
) -> Origin:
    """Where a setting came from, in the precedence order: flag, env, config file, default."""
    if option:
        return Origin("flag", flag)
    if env.get(variable):
        return Origin("env", variable)
    if config_value:
        return Origin("config-file", config_where)
    return Origin("default", default)
