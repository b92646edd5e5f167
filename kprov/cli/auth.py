"""`kprov auth`: store, check and delete the API secret. The secret is never a flag."""

from __future__ import annotations

import sys

import typer

from kprov.cli.output import emit_json, globals_of, guarded, is_terminal
from kprov.errors import ConfigError, InputError

app = typer.Typer(
    help="Store, check or delete the API secret. Example: kprov auth login", no_args_is_help=True
)


@app.command("login")
@guarded
def login(
    ctx: typer.Context,
    secret_stdin: bool = typer.Option(
        False, "--secret-stdin", help="Read the secret from standard input instead of asking."
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Check the secret with the API before storing it."
    ),
) -> None:
    """Store the API secret in the system keyring (hidden input).

    \b
    Examples:
      kprov --profile prod auth login
      pass show knewton/prod | kprov --profile prod auth login --secret-stdin

    """
    from kprov.credentials import Secret, store_api_secret

    settings = globals_of(ctx).settings()
    if secret_stdin:
        secret = Secret(sys.stdin.readline().rstrip("\r\n"))
    elif is_terminal(sys.stdin):
        secret = Secret(
            typer.prompt(f"API secret for profile {settings.profile.name}", hide_input=True)
        )
    else:
        raise InputError(
            "no terminal to ask for the secret on", hint="Pipe it in with --secret-stdin."
        )
    if not secret:
        raise InputError("the secret is empty; nothing was stored")
    if verify:
        from kprov.provision.session import build_client

        with build_client(settings, pool_size=1, secret=secret) as client:
            client.token_for()

    store_api_secret(settings.profile.name, secret)
    typer.echo(f"secret for profile {settings.profile.name!r} stored in the keyring")


@app.command("status")
@guarded
def status(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Check the credentials: get a token and show whose it is.

    \b
    Examples:
      kprov --profile sandbox auth status
    """
    from kprov.provision.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1) as client:
        account = client.current_account()
    data = {
        "ok": True,
        "profile": settings.profile.name,
        "base_url": settings.profile.base_url,
        "account_id": account.id,
        "external_user_id": account.external_user_id,
        "state_dir": str(settings.state_dir),
    }
    if json_output:
        emit_json(data)
        return
    typer.echo(f"profile:  {settings.profile.name}")
    typer.echo(f"base URL: {settings.profile.base_url}")
    typer.echo(
        f"token belongs to account {account.id} "
        f"(external id {account.external_user_id or 'not given'})"
    )


@app.command("logout")
@guarded
def logout(ctx: typer.Context) -> None:
    """Delete the profile's stored secret from the keyring.

    \b
    Examples:
      kprov --profile prod auth logout
    """
    from kprov.credentials import delete_api_secret

    settings = globals_of(ctx).settings()
    if delete_api_secret(settings.profile.name):
        typer.echo(f"secret for profile {settings.profile.name!r} deleted")
    else:
        raise ConfigError(f"no stored secret for profile {settings.profile.name!r}")
