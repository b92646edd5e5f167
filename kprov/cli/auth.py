"""`kprov auth`: store, check and delete the API secret; make the --hash-ids key.

Secrets are never flags. Where they may come from, and in which order, is written once in
``kprov.credentials``.
"""

from __future__ import annotations

import sys

import typer

from kprov.cli.output import command_group, globals_of, guarded
from kprov.cli.render_data import Message, said
from kprov.errors import ConfigError, InputError

app = command_group("Store, check or delete the API secret. Example: kprov auth login")
id_key_app = command_group(
    "The key --hash-ids derives external ids with. Example: kprov auth id-key generate"
)
app.add_typer(id_key_app, name="id-key")


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
) -> Message:
    """Store the API secret in the system keyring (hidden input).

    Servers and cron boxes have no keyring: put the secret in a file only the job's user can
    read (chmod 600) and name it in the profile (`kprov profile add NAME ... --secret-file
    FILE`) or in KPROV_API_SECRET_FILE; `kprov config show` says which secret is used.

    \b
    Examples:
      kprov --profile prod auth login
      pass show knewton/prod | kprov --profile prod auth login --secret-stdin

    """
    from kprov.credentials import API_SECRET, Secret, require_keyring, store_api_secret

    g = globals_of(ctx)
    settings = g.settings()
    require_keyring(API_SECRET, settings.profile.name)
    if secret_stdin:
        secret = Secret(sys.stdin.readline().rstrip("\r\n"))
    elif g.env.stdin_isatty:
        secret = Secret(  # asked on stderr: stdout stays the command's output
            typer.prompt(
                f"API secret for profile {settings.profile.name}", hide_input=True, err=True
            )
        )
    else:
        raise InputError(
            "no terminal to ask for the secret on", hint="Pipe it in with --secret-stdin."
        )
    if not secret:
        raise InputError("the secret is empty; nothing was stored")
    if verify:
        from kprov.cli.session import build_client

        with build_client(settings, pool_size=1, secret=secret, interactive=True) as client:
            client.token_for()

    store_api_secret(settings.profile.name, secret)
    name = settings.profile.name
    note = ""
    if settings.profile.secret_file:
        note = f" (but the profile's secret_file {settings.profile.secret_file} comes first)"
    return said(f"secret for profile {name!r} stored in the keyring{note}", profile=name)


@app.command("status")
@guarded
def status(ctx: typer.Context) -> Message:
    """Check the credentials: get a token and show whose it is.

    \b
    Examples:
      kprov --profile sandbox auth status
    """
    from kprov.cli.session import build_client
    from kprov.credentials import find_api_secret

    settings = globals_of(ctx).settings()
    secret, source = find_api_secret(settings)
    with build_client(
        settings, pool_size=1, secret=secret, secret_source=source, interactive=True
    ) as client:
        account = client.current_account()
    lines = [
        f"profile:  {settings.profile.name}",
        f"base URL: {settings.profile.base_url}",
        f"secret:   from {source.kind} {source.location}",
        f"token belongs to account {account.id} "
        f"(external id {account.external_user_id or 'not given'})",
    ]
    return Message([], always=lines, facts={
        "ok": True,
        "profile": settings.profile.name,
        "base_url": settings.profile.base_url,
        "account_id": account.id,
        "external_user_id": account.external_user_id,
        "state_dir": str(settings.state_dir),
        "secret_source": {"source": source.kind, "location": source.location},
    })  # fmt: skip


@app.command("logout")
@guarded
def logout(ctx: typer.Context) -> Message:
    """Delete the profile's stored secret from the keyring.

    \b
    Examples:
      kprov --profile prod auth logout
    """
    from kprov.credentials import delete_api_secret

    settings = globals_of(ctx).settings()
    name = settings.profile.name
    if not delete_api_secret(name):
        raise ConfigError(f"no stored secret for profile {name!r}")
    return said(f"secret for profile {name!r} deleted", profile=name)


@id_key_app.command("generate")
@guarded
def generate_id_key(
    ctx: typer.Context,
    print_key: bool = typer.Option(
        False, "--print", help="Print the key once (for a file) instead of using the keyring."
    ),
) -> None:
    """Make a 32-byte random key for --hash-ids and store it in the keyring.

    With --print, or on a machine without a keyring, the key is printed once on stdout for
    you to put in a file (KPROV_ID_KEY_FILE) or a systemd credential (kprov-id-key). Keep
    it forever: a new key gives every person a new external id.

    \b
    Examples:
      kprov --profile prod auth id-key generate
      (umask 077; kprov --profile prod auth id-key generate --print > /etc/kprov/prod.id-key)
    """
    from kprov.credentials import ID_KEY, new_id_key, store_secret, stored_in_keyring

    key = new_id_key()
    name = "" if print_key else globals_of(ctx).settings().profile.name
    in_keyring = None if print_key else stored_in_keyring(ID_KEY, name)
    if in_keyring:
        raise ConfigError(
            f"profile {name!r} already has an id key in the keyring; kprov will not replace "
            "it: every hashed external id depends on it.",
            hint="Use --print to make a key for another machine or profile.",
        )
    if in_keyring is False:
        store_secret(ID_KEY, name, key)
        typer.echo(
            f"a new 32-byte id key for profile {name!r} is in the keyring (user "
            f"{ID_KEY.keyring_user(name)!r}). Back it up and keep it forever: the same SIS "
            "id must always hash to the same external id.",
            err=True,
        )
        return
    if not print_key:
        sys.stderr.write("kprov: this machine has no usable keyring; printing the key instead.\n")
    sys.stdout.write(key.reveal() + "\n")
    sys.stdout.flush()
    sys.stderr.write(
        "kprov: this key is shown once. Save it in a file only kprov's user can read "
        "(chmod 600) and set KPROV_ID_KEY_FILE to its path (or LoadCredential=kprov-id-key:FILE "
        "under systemd), and back it up: keep it forever, the same SIS id must always hash to "
        "the same external id.\n"
    )
