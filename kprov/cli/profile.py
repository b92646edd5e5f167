"""`kprov profile`: named API targets in the config file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import YES_OPTION
from kprov.cli.completion import complete_profile
from kprov.cli.output import command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Column, Fields, Message, Table, said
from kprov.errors import ConfigError, InputError

if TYPE_CHECKING:
    from kprov.config import ConfigFile, Profile


app = command_group(
    "Manage profiles (API targets). Example: kprov profile add prod "
    "--base-url https://api.knewton.com/v0 --api-key KEY"
)

PROFILE_ARGUMENT = typer.Argument(
    ..., metavar="PROFILE", help="Profile name.", autocompletion=complete_profile
)


def _config_file(ctx: typer.Context) -> ConfigFile:
    import os

    from kprov.config import ConfigFile, config_path_from

    return ConfigFile(config_path_from(globals_of(ctx).config, os.environ))


@app.command("add")
@guarded
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="PROFILE", help="Profile name, e.g. prod or emea."),
    base_url: str = typer.Option(
        ..., "--base-url", metavar="URL", help="Versioned API URL, e.g. https://api.knewton.com/v0"
    ),
    api_key: str = typer.Option(
        ..., "--api-key", metavar="KEY", help="The partner's API key (not the secret)."
    ),
    token_url: str | None = typer.Option(
        None, "--token-url", metavar="URL", help="Token endpoint, if not BASE_URL/oauth/token."
    ),
    admin_external_id: str | None = typer.Option(
        None,
        "--admin-external-id",
        metavar="ID",
        help="Partner admin's external id, sent as scope for the "
        "admin token when the API requires it.",
    ),
    secret_file: Path | None = typer.Option(
        None,
        "--secret-file",
        metavar="FILE",
        help="Read the API secret from FILE (only its owner may read it: chmod 600); for "
        "servers and cron boxes without a keyring. KPROV_API_SECRET and "
        "KPROV_API_SECRET_FILE still override it.",
        show_default=False,
    ),
    use: bool = typer.Option(False, "--use", help="Make it the current profile."),
) -> Message:
    """Add or replace a profile (base URL and API key).

    The secret is stored separately: `kprov auth login` (the keyring), or a file the
    profile names (--secret-file).

    \b
    Examples:
      kprov profile add prod --base-url https://api.knewton.com/v0 --api-key KEY --use
      kprov profile add prod --base-url https://api.knewton.com/v0 --api-key KEY \\
          --secret-file /etc/kprov/prod.secret
    """
    from kprov.config import Profile, validate_base_url
    from kprov.rosters.validate import id_problems

    wrong = id_problems(admin_external_id, check_pii=False) if admin_external_id else []
    if wrong:
        raise InputError("--admin-external-id: nothing was saved:", problems=wrong)
    config = _config_file(ctx)
    given = Profile(
        name=name,
        base_url=validate_base_url(base_url),
        api_key=api_key,
        token_url=validate_base_url(token_url, "token URL") if token_url else None,
        admin_external_id=admin_external_id,
        secret_file=_checked_secret_file(secret_file) if secret_file else None,
    )
    profile, kept = _keeping(config.profiles.get(name), given)
    config.add(profile)
    if use:
        config.current_profile = name
    config.save()
    secret_known = profile.secret_file is not None
    then = f"; now run: kprov --profile {name} auth login" if not secret_known else ""
    also = f" (kept from before: {', '.join(kept)})" if kept else ""
    return said(f"profile {name!r} saved in {config.path}{also}{then}",
                profile=name, config=str(config.path), kept=kept)  # fmt: skip


def _keeping(before: Profile | None, given: Profile) -> tuple[Profile, list[str]]:
    """*given*, over what the profile already held: re-adding a profile to change its URL or
    key keeps the settings no option of `profile add` sets (rate limits, guards, history,
    notifications) and the optional ones not given again. Returns the profile and what was
    kept, by name."""
    from dataclasses import replace

    if before is None:
        return given, []
    kept: list[str] = []
    merged = given
    for option in ("token_url", "admin_external_id", "secret_file"):
        if getattr(given, option) is None and getattr(before, option) is not None:
            merged = replace(merged, **{option: getattr(before, option)})
            kept.append(option)
    if before.rate_limits or before.rate_limits_off:
        merged = replace(merged, rate_limits=before.rate_limits,
                         rate_limits_off=before.rate_limits_off)  # fmt: skip
        kept.append("rate_limits")
    settings = before.run.to_dict()
    if settings:
        merged = replace(merged, run=before.run)
        kept.extend(settings)
    return merged, kept


def _checked_secret_file(path: Path) -> str:
    """--secret-file: an absolute path (cron's working directory is not yours) to a file
    that holds a secret only its owner can read, checked now: nothing is saved otherwise."""
    from kprov.credentials import read_secret_file

    absolute = path.expanduser().absolute()
    missing = "Create it first (chmod 600), holding the secret on one line."
    try:
        read_secret_file(absolute, f"--secret-file {absolute}", check_mode=True, missing=missing)
    except ConfigError as error:
        raise InputError(f"{error.message}; nothing was saved", hint=error.hint) from None
    return str(absolute)


def _profile_json(profile: Profile, *, current: bool, builtin: bool) -> dict[str, Any]:
    return {
        "name": profile.name,
        **profile.to_dict(),
        "current": current,
        "builtin": builtin,
    }


def _known_profiles(config: ConfigFile) -> list[tuple[Profile, bool]]:
    """The config file's profiles, then the built-in sandbox unless one of them shadows it."""
    from kprov.config import SANDBOX_PROFILE, builtin_sandbox_profile

    known = [(p, False) for _, p in sorted(config.profiles.items())]
    if SANDBOX_PROFILE not in config.profiles:
        known.append((builtin_sandbox_profile(), True))
    return known


PROFILE_COLUMNS = (
    Column("current", " ", text=lambda on: "*" if on else "", wrap=False),
    Column("name", wrap=False), Column("base_url", "base URL"),
    Column("builtin", "note", text=lambda on: BUILTIN_NOTE if on else ""),
)  # fmt: skip
BUILTIN_NOTE = "built-in: a local sandbox, served by kprov itself"


@app.command("list")
@guarded
def list_profiles(ctx: typer.Context) -> Table:
    """List profiles; the current one is marked with '*', the built-in sandbox as built-in.

    \b
    Examples:
      kprov profile list
    """
    config = _config_file(ctx)
    rows = [
        _profile_json(p, current=p.name == config.current_profile, builtin=builtin)
        for p, builtin in _known_profiles(config)
    ]
    note = (
        ""
        if config.profiles
        else f"no profiles in {config.path} yet; add one with `kprov profile add`"
    )
    return Table("profiles", PROFILE_COLUMNS, rows, more={"config": str(config.path)}, note=note)


@app.command("show")
@guarded
def show_profile(ctx: typer.Context, name: str = PROFILE_ARGUMENT) -> Fields:
    """Show what the config file says about profile NAME.

    `kprov --profile NAME config show` shows what a command would really use (environment
    variables included).

    \b
    Examples:
      kprov profile show prod
    """
    config = _config_file(ctx)
    found = {p.name: (p, builtin) for p, builtin in _known_profiles(config)}
    if name not in found:
        raise _no_such_profile(name, config)
    profile, builtin = found[name]
    return Fields(
        _profile_json(profile, current=name == config.current_profile, builtin=builtin),
        title=f"profile {name}{' (built-in)' if builtin else ''}",
        name="profile", more={"config": str(config.path)}, hidden=("name", "builtin"),
    )  # fmt: skip


@app.command("remove")
@guarded
def remove_profile(
    ctx: typer.Context,
    name: str = PROFILE_ARGUMENT,
    yes: bool = YES_OPTION,
    current_too: bool = typer.Option(
        False, "--current", help="Allow removing the current profile (none is current after)."
    ),
) -> Message:
    """Remove profile NAME from the config file.

    Its state directory (the mapping) and its keyring entries are kept: `kprov --profile
    NAME auth logout` deletes the secret.

    \b
    Examples:
      kprov profile remove staging --yes
    """
    from kprov.config import SANDBOX_PROFILE

    config = _config_file(ctx)
    if name not in config.profiles:
        if name == SANDBOX_PROFILE:
            raise ConfigError("'sandbox' is built in; there is nothing to remove")
        raise _no_such_profile(name, config)
    if name == config.current_profile and not current_too:
        raise ConfigError(
            f"{name!r} is the current profile; commands without --profile use it.",
            hint="Pass --current to remove it anyway, or first `kprov profile use OTHER`.",
        )
    confirm(f"Remove profile {name!r} from {config.path}?", globals_of(ctx).env, yes=yes)
    config.remove(name)
    config.save()
    return said(
        f"profile {name!r} removed from {config.path}; its state directory and keyring "
        "entries were kept",
        profile=name, config=str(config.path),
    )  # fmt: skip


def _no_such_profile(name: str, config: ConfigFile) -> ConfigError:
    return ConfigError(
        f"no profile named {name!r} in {config.path}",
        hint="See `kprov profile list`, or add it with `kprov profile add`.",
    )


@app.command("use")
@guarded
def use_profile(ctx: typer.Context, name: str = PROFILE_ARGUMENT) -> Message:
    """Make NAME the current profile.

    \b
    Examples:
      kprov profile use prod
    """
    from kprov.config import SANDBOX_PROFILE

    config = _config_file(ctx)
    if name not in config.profiles and name != SANDBOX_PROFILE:
        raise _no_such_profile(name, config)
    config.current_profile = name
    config.save()
    return said(f"current profile: {name}", profile=name, config=str(config.path))
