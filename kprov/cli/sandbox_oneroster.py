"""`kprov sandbox oneroster`: a local OneRoster 1.1/1.2 REST server over a bundle, for trying
and testing `oneroster_api:` sources (its own server; it shares no code with the client)."""

from __future__ import annotations

import typer

from kprov.cli.output import guarded
from kprov.errors import InputError

SANDBOX_SIS_CLIENT_ID = "sandbox-sis"
SANDBOX_SIS_SECRET = "sandbox-sis-secret"  # public: the sandbox's only secret


@guarded
def serve_oneroster(
    bundle: str | None = typer.Argument(
        None,
        metavar="[BUNDLE]",
        help="A OneRoster CSV bundle (folder or .zip) to serve [default: the sample bundle].",
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="HOST", help="Address to bind (loopback only)."
    ),
    port: int = typer.Option(8780, "--port", metavar="PORT", help="Port; 0 picks a free one."),
    auth: str = typer.Option(
        "both",
        "--auth",
        metavar="WHICH",
        help="Sign-in accepted: oauth1 (1.0a HMAC-SHA256), oauth2, or both.",
    ),
    page_size: int = typer.Option(
        3, "--page-size", metavar="N", min=1, help="Most records per page, whatever `limit` asks."
    ),
    token_ttl: float = typer.Option(
        3600.0, "--token-ttl", metavar="SECONDS", help="OAuth 2 token lifetime, s."
    ),
    hostile: str | None = typer.Option(
        None,
        "--hostile",
        metavar="MODES",
        help="Hostile modes, MODE[=RATE][@COLLECTION],... (listed above).",
    ),
    retry_after: str = typer.Option(
        "1",
        "--retry-after",
        metavar="SECONDS",
        help="Retry-After of the `429` mode's answers (seconds).",
    ),
    seed: int | None = typer.Option(
        None, "--seed", metavar="N", help="Seed for the hostile modes."
    ),
    verbose: bool = typer.Option(False, "--log-requests", help="Log every request."),
) -> None:
    """Serve a OneRoster bundle as OneRoster 1.1 and 1.2 REST APIs until Ctrl-C.

    1.1 at /ims/oneroster/v1p1, 1.2 at /ims/oneroster/rostering/v1p2, tokens at
    /oauth/token; client id `sandbox-sis`, secret `sandbox-sis-secret` (sandbox only).

    \b
    Examples:
      kprov sandbox oneroster --page-size 2
      kprov sandbox oneroster ./district-bundle --hostile short,429=0.2 --seed 4

    \b
    Hostile modes (--hostile MODE[=RATE][@COLLECTION],...; RATE: share of pages, default 1):
      short           pages hold 1 to --page-size records at random (short is not the end)
      no-envelope     a 200 whose JSON lacks the collection (pages after the first)
      shrink          X-Total-Count one less than the truth (pages after the first)
      wrong-total     X-Total-Count counts the page, not the collection
      no-total        no X-Total-Count header
      shift           a page starts one record early (records moved between pages)
      fail            500 on every attempt (pages after the first)
      429             429 with Retry-After (--retry-after)
      dup-json        the collection's name twice in one JSON object (pages after the first)
      bad-links       Link rel="next" skips a record
      redirect        307 to another host
      no-sort         400 for any request asking `sort`
      echo            401/500 answers quote the Authorization header and the secret
      secret-in-data  the first user's givenName holds the secret
    """
    from pathlib import Path

    from kprov.sandbox.oneroster_data import RosterData
    from kprov.sandbox.oneroster_hostile import OneRosterHostility
    from kprov.sandbox.oneroster_server import AUTH_SCHEMES, OneRosterSandbox

    if auth not in AUTH_SCHEMES:
        raise InputError(f"--auth {auth!r}: use one of {', '.join(AUTH_SCHEMES)}")
    try:
        hostility = OneRosterHostility(hostile or "", seed=seed)
    except ValueError as exc:
        raise InputError(f"--hostile: {exc}") from None
    if bundle is None:
        from importlib.resources import as_file, files

        with as_file(files("kprov") / "samples" / "oneroster") as sample:
            data = RosterData(Path(sample))
    else:
        path = Path(bundle).expanduser()
        if not path.exists():
            raise InputError(f"{bundle}: no such bundle (a folder or .zip of OneRoster CSV)")
        data = RosterData(path)
    try:
        server = OneRosterSandbox(
            (host, port), data, client_id=SANDBOX_SIS_CLIENT_ID, secret=SANDBOX_SIS_SECRET,
            auth=auth, page_cap=page_size, token_ttl=token_ttl, hostile=hostility,
            retry_after=retry_after, verbose=verbose,
        )  # fmt: skip
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="Pick another --port (0 chooses a free one).",
        ) from None
    typer.echo(f"kprov OneRoster sandbox listening; pages of at most {page_size} records")
    typer.echo(f"  1.1: {server.url('1.1')}   (OAuth 1.0a, or OAuth 2)")
    typer.echo(f"  1.2: {server.url('1.2')}   (token_url {server.token_url})")
    typer.echo(f"  client_id: {SANDBOX_SIS_CLIENT_ID}   secret: {SANDBOX_SIS_SECRET} (sandbox)")
    typer.echo(f"  try: export SIS_SECRET={SANDBOX_SIS_SECRET}; see docs/oneroster-api.md")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("OneRoster sandbox stopped")
    finally:
        server.server_close()
