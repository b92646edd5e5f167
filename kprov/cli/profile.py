"""`kprov profile`: named API targets in the config file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from kprov.cli.output import command_group, emit_json, globals_of, guarded
from kprov.errors import ConfigError

if TYPE_CHECKING:
    from kprov.config import ConfigFile


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


@app.command("list")
@guarded
def list_profiles(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List profiles; the current one is marked with '*'.

    \b
    Examples:
      kprov profile list
    """
    config = _config_file(ctx)
    rows = [
        {
            "name": p.name,
            "base_url": p.base_url,
            "api_key": p.api_key,
            "current": p.name == config.current_profile,
        }
        for p in config.profiles.values()
    ]
    if json_output:
        emit_json({"config": str(config.path), "profiles": rows})
        return
    if not rows:
        typer.echo(
            f"no profiles in {config.path}; add one with `kprov profile add`, or try "
            "`--profile sandbox`"
        )
        return
    for row in rows:
        mark = "*" if row["current"] else " "
        typer.echo(f"{mark} {row['name']}\t{row['base_url']}")


@app.command("use")
@guarded
def use_profile(ctx: typer.Context, name: str = typer.Argument(..., help="Profile name.")) -> None:
    """Make NAME the current profile.

    \b
    Examples:
      kprov profile use prod
    """
    config = _config_file(ctx)
    if name not in config.profiles:
        raise ConfigError(
            f"no profile named {name!r} in {config.path}",
            hint="See `kprov profile list`, or add it with `kprov profile add`.",
        )
    config.current_profile = name
    config.save()
    typer.echo(f"current profile: {name}")
