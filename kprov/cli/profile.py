"""`kprov profile`: named API targets in the config file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import YES_OPTION
from kprov.cli.output import command_group, emit_data, globals_of, guarded
from kprov.errors import ConfigError, InputError

if TYPE_CHECKING:
    from kprov.config import ConfigFile, Profile


app = command_group(
    "Manage profiles (API targets). Example: kprov profile add prod "
    "--base-url https://api.knewton.com/v0 --api-key KEY"
)


def _config_file(ctx: typer.Context) -> ConfigFile:
    import os

    from kprov.config import ConfigFile, config_path_from

    return ConfigFile(config_path_from(globals_of(ctx).config, os.environ))


@app.command("add")
@guarded
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Profile name, e.g. prod or emea."),
    base_url: str = typer.Option(
        ..., "--base-url", help="Versioned API URL, e.g. https://api.knewton.com/v0"
    ),
    api_key: str = typer.Option(..., "--api-key", help="The partner's API key (not the secret)."),
    token_url: str | None = typer.Option(
        None, "--token-url", help="Token endpoint, if not <base-url>/oauth/token."
    ),
    admin_external_id: str | None = typer.Option(
        None,
        "--admin-external-id",
        help="Partner admin's external id, sent as scope for the "
        "admin token when the API requires it.",
    ),
    use: bool = typer.Option(False, "--use", help="Make it the current profile."),
) -> None:
    """Add or replace a profile (base URL and API key).

    The secret is stored separately: `kprov auth login`.

    \b
    Examples:
      kprov profile add prod --base-url https://api.knewton.com/v0 --api-key KEY --use
    """
    from kprov.config import Profile, validate_base_url
    from kprov.rosters.validate import id_problems

    wrong = id_problems(admin_external_id, check_pii=False) if admin_external_id else []
    if wrong:
        raise InputError("--admin-external-id: nothing was saved:", problems=wrong)
    config = _config_file(ctx)
    config.add(
        Profile(
            name=name,
            base_url=validate_base_url(base_url),
            api_key=api_key,
            token_url=validate_base_url(token_url, "token URL") if token_url else None,
            admin_external_id=admin_external_id,
        )
    )
    if use:
        config.current_profile = name
    config.save()
    typer.echo(
        f"profile {name!r} saved in {config.path}; now run: kprov --profile {name} auth login"
    )


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


@app.command("list")
@guarded
def list_profiles(
    ctx: typer.Context,
) -> None:
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
    if globals_of(ctx).json:
        emit_data(ctx, {"config": str(config.path), "profiles": rows})
        return
    if not config.profiles:
        typer.echo(f"no profiles in {config.path} yet; add one with `kprov profile add`")
    for row in rows:
        mark = "*" if row["current"] else " "
        note = "\t(built-in: a local sandbox, served by kprov itself)" if row["builtin"] else ""
        typer.echo(f"{mark} {row['name']}\t{row['base_url']}{note}")


@app.command("show")
@guarded
def show_profile(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Profile name."),
) -> None:
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
    data = _profile_json(profile, current=name == config.current_profile, builtin=builtin)
    if globals_of(ctx).json:
        emit_data(ctx, {"config": str(config.path), "profile": data})
        return
    typer.echo(f"profile {name}{' (built-in)' if builtin else ''}")
    for key, value in data.items():
        if key not in ("name", "builtin"):
            typer.echo(f"  {key}: {value}")


@app.command("remove")
@guarded
def remove_profile(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Profile name."),
    yes: bool = YES_OPTION,
    current_too: bool = typer.Option(
        False, "--current", help="Allow removing the current profile (none is current after)."
    ),
) -> None:
    """Remove profile NAME from the config file.

    Its state directory (the mapping) and its keyring entries are kept: `kprov --profile
    NAME auth logout` deletes the secret.

    \b
    Examples:
      kprov profile remove staging --yes
    """
    from kprov.cli.common import confirm_or_refuse
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
    confirm_or_refuse(f"Remove profile {name!r} from {config.path}?", yes=yes)
    config.remove(name)
    config.save()
    typer.echo(
        f"profile {name!r} removed from {config.path}; its state directory and keyring "
        "entries were kept"
    )


def _no_such_profile(name: str, config: ConfigFile) -> ConfigError:
    return ConfigError(
        f"no profile named {name!r} in {config.path}",
        hint="See `kprov profile list`, or add it with `kprov profile add`.",
    )


@app.command("use")
@guarded
def use_profile(ctx: typer.Context, name: str = typer.Argument(..., help="Profile name.")) -> None:
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
    typer.echo(f"current profile: {name}")
