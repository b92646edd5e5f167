"""`kprov sandbox`: the local implementation of the API, its sample semester, its reset."""

from __future__ import annotations

import typer

from kprov.cli.common import YES_OPTION
from kprov.cli.output import command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Message, said
from kprov.cli.sandbox_oneroster import serve_oneroster
from kprov.config import SANDBOX_PORT
from kprov.errors import InputError

app = command_group(
    "Run a local sandbox of the Knewton v0 API (and of a SIS's OneRoster API), write its "
    "sample semester, reset it. Example: kprov sandbox sample ~/kprov-try"
)
app.command("oneroster")(serve_oneroster)


@app.command("sample")
@guarded
def sample(
    directory: str = typer.Argument(
        ..., metavar="DIR", help="Directory to write into (created if missing)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite sample files already there."),
) -> Message:
    """Write the sample semester (a manifest, CSV and YAML rosters, a OneRoster bundle).

    The manifest's paths are relative to it, so it syncs from any directory.

    \b
    Examples:
      kprov sandbox sample ~/kprov-try
      kprov --profile sandbox sync ~/kprov-try/semester.yaml
    """
    from pathlib import Path

    from kprov.sample_semester import MANIFEST, write_sample_semester

    destination = Path(directory).expanduser()
    written = write_sample_semester(destination, overwrite=force)
    manifest = destination / MANIFEST
    return Message(
        [f"wrote {len(written)} files into {destination}; now run:",
         f"  kprov --profile sandbox sync {manifest}"],
        {"directory": str(destination), "files": len(written), "manifest": str(manifest)},
    )  # fmt: skip


@app.command("reset")
@guarded
def reset(ctx: typer.Context, yes: bool = YES_OPTION) -> Message:
    """Forget everything the built-in sandbox profile made: its server's accounts, instances
    and registrations, and kprov's mapping and registry for it.

    \b
    Examples:
      kprov sandbox reset --yes
    """
    import os

    from kprov.cli.builtin_sandbox import reset_plan, reset_state
    from kprov.config import SANDBOX_PROFILE, resolve_settings
    from kprov.state.lock import LOCK_NAME

    settings = resolve_settings(
        config_option=globals_of(ctx).config, profile_option=SANDBOX_PROFILE
    )
    doomed = [p.name for p in reset_plan(settings, os.environ) if p.name != LOCK_NAME]
    if not doomed:
        return said(
            f"the sandbox profile has no state in {settings.state_dir}; nothing to do",
            state_dir=str(settings.state_dir), removed=0,
        )  # fmt: skip
    confirm(
        f"Delete the sandbox profile's state in {settings.state_dir} ({', '.join(doomed)})?",
        globals_of(ctx).env,
        yes=yes,
    )
    reset_state(settings)
    return said(
        f"sandbox reset: {settings.state_dir} removed ({len(doomed)} files)",
        state_dir=str(settings.state_dir), removed=len(doomed),
    )  # fmt: skip


@app.command("serve")
@guarded
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="HOST", help="Address to bind (loopback only by default)."
    ),
    port: int = typer.Option(
        SANDBOX_PORT, "--port", metavar="PORT", help="Port; 0 picks a free one."
    ),
    state: str | None = typer.Option(
        None, "--state", metavar="FILE", help="Journal file that keeps the state across restarts."
    ),
    latency_ms: float = typer.Option(
        0.0,
        "--latency-ms",
        metavar="MS",
        help="Delay added to every answer.",
        rich_help_panel="Realism",
    ),
    rate_limit: float | None = typer.Option(
        None,
        "--rate-limit",
        metavar="PER_SECOND",
        help="Requests per second before 429 (ip-limited), a token bucket.",
        rich_help_panel="Realism",
    ),
    # the rate limiter's shape (burst, Retry-After): the pacing benches need the hard case
    burst: int | None = typer.Option(
        None,
        "--burst",
        metavar="N",
        min=1,
        help="Requests the --rate-limit bucket saves up [default: one second's worth].",
        rich_help_panel="Realism",
    ),
    retry_after: str = typer.Option(
        "ceil",
        "--retry-after",
        metavar="HOW",
        help="Retry-After on its 429s: 'ceil' (whole seconds, rounded up: 1 for a 2 ms wait), "
        "'exact' (fractional seconds) or 'none' (absent, as the API documents).",
        rich_help_panel="Realism",
    ),
    knewton_limits: bool = typer.Option(
        False,
        "--knewton-limits",
        help="Enforce the "
        "documented per-token, per-endpoint quotas (429 "
        "with X-Knewton-Rate-Exceeded, no Retry-After).",
        rich_help_panel="Realism",
    ),
    token_ttl: float = typer.Option(
        3599.0,
        "--token-ttl",
        metavar="SECONDS",
        help="Access token lifetime, seconds.",
        rich_help_panel="Realism",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help="Only an instructor of the instance may register learners (not the partner admin).",
        rich_help_panel="Realism",
    ),
    token_account_id: bool = typer.Option(
        False,
        "--token-account-id",
        help="Include account_id in token answers (older API docs).",
        rich_help_panel="Realism",
    ),
    fail_rate: float = typer.Option(
        0.0,
        "--fail-rate",
        metavar="SHARE",
        help="Share of API requests that fail (mix of 503, 500-after-apply, drops, 429).",
        rich_help_panel="Faults",
    ),
    faults: str | None = typer.Option(
        None,
        "--faults",
        metavar="RATES",
        help="Exact fault rates, e.g. '503=0.05,500after=0.03,drop=0.02,429=0.01'.",
        rich_help_panel="Faults",
    ),
    seed: int | None = typer.Option(
        None, "--seed", metavar="N", help="Seed for fault injection.", rich_help_panel="Faults"
    ),
    hostile: str | None = typer.Option(
        None,
        "--hostile",
        metavar="MODES",
        help="Hostile modes, MODE[=RATE],... (see the list above); seeded by --seed.",
        rich_help_panel="Hostile",
    ),
    trickle_interval: float = typer.Option(
        2.0,
        "--trickle-interval",
        metavar="SECONDS",
        min=0.001,
        help="Seconds between two bytes of a trickled answer.",
        rich_help_panel="Hostile",
    ),
    api_key: str = typer.Option(
        "sandbox-key", "--api-key", metavar="KEY", help="API key the sandbox accepts."
    ),
    verbose: bool = typer.Option(False, "--log-requests", help="Log every request."),
) -> None:
    """Serve the documented API on HOST:PORT until Ctrl-C.

    \b
    Examples:
      kprov sandbox serve --latency-ms 20 --fail-rate 0.05 --seed 7
      kprov sandbox serve --hostile reorder,refuse=0.2,echo=0.1 --seed 3

    \b
    Hostile modes (--hostile MODE[=RATE],...; RATE is the share of requests, default 1):
      reorder           shuffle batch answer items (each still names its external id)
      reorder-noid      shuffle batch items and drop their external_user_id
      noid              drop external_user_id from batch items, order kept (legal)
      wrong-id          a batch item names an external id that was not requested
      dup-id            two batch items carry the same account id
      bad-uuid          ids in answers are not UUIDs
      newline-id        ids in answers: a UUID and a trailing newline
      climbing-id       created instance/registration ids like ../accounts/<id>
      missing-id        answers without their id
      reused-id         created registrations: the first registration id, again
      collide           accounts/current: one account, without external_user_id, to all
      collide-token     token answers: one account_id (the first handed out) for all
      token-crlf        token answers: an access_token with CR/LF and non-ASCII
      token-expiry      token answers: an absurd expires_in (400 digits, text...)
      refresh-fail      refresh grants answered 500, 422 or 200 without a token
      refuse            trap 422/409 refusals of registrations and accounts (not applied)
      dialect-verbose   real refusals worded in long sentences
      dialect-terse     real refusals worded in few words
      dialect-409       duplicates and existing registrations answered 409 Conflict
      echo              API errors (400) echo the Authorization header and the body
      echo-html         the same echo as a text/html page
      echo-token        token errors (400) echo the Basic credentials and the form
      echo-token-html   the same echo as an HTML page (escaping what it quotes)
      redirect          API calls answered 307 to another host (https or http)
      redirect-token    token requests answered 307 to another host
      trickle           API answers sent one byte per --trickle-interval
      trickle-body      API answers: headers at once, the body byte by byte
      trickle-token     token answers trickled
      stall             API calls applied, then never answered
      stall-token       token requests never answered
      html              502/503 HTML pages from a proxy (not applied)
      html-404          DELETE calls: a proxy's 404 HTML page (not applied)
      huge-retry-after  429 with Retry-After: 100000
      huge-rate-delay   429 with X-Knewton-Rate-Delay: 100000000 (ms)
      echo-encoded      API answers carry the bearer token re-encoded (upper, hex...)
      echo-token-encoded  token errors (400) quote the secret re-encoded (%xx, &#43;,
                        base64, hex, \\u escapes)
      echo-token-split  token errors (400) quote the secret split across lines, wrapped,
                        glued to a word, as 0x hex, UTF-16 base64, \\x escapes
      escape-text       registrations refused with terminal escapes, bidi overrides and
                        a formula in the message (not applied)
      escape-name       learning instance answers: a name with terminal escapes
      rate-forever      every request answered 429, Retry-After spelled any way
      dup-name          answers name their id twice (a made-up id last)
      upper-id          ids in answers upper-cased
      replay            every POST delivered twice (the second's answer returned)
    """
    from pathlib import Path

    from kprov.config import SANDBOX_API_SECRET
    from kprov.sandbox.faults import FaultInjector, FaultRates
    from kprov.sandbox.server import SandboxHTTPServer
    from kprov.sandbox.store import SandboxStore

    try:
        rates = FaultRates.parse(faults) if faults else FaultRates.from_total(fail_rate)
    except ValueError as exc:
        raise InputError(f"--faults: {exc}") from None
    from kprov.sandbox.hostile import Hostility

    try:
        hostility = Hostility(hostile or "", seed=seed, trickle=trickle_interval)
    except ValueError as exc:
        raise InputError(f"--hostile: {exc}") from None
    if retry_after not in ("ceil", "exact", "none"):
        raise InputError(f"--retry-after: {retry_after!r} is not one of ceil, exact, none")
    store = SandboxStore(
        api_key=api_key,
        api_secret=SANDBOX_API_SECRET,
        state_path=Path(state) if state else None,
        token_ttl=token_ttl,
        strict_learner_permissions=strict,
        token_account_id=token_account_id,
    )
    try:
        server = SandboxHTTPServer(
            (host, port),
            store,
            latency_ms=latency_ms,
            faults=FaultInjector(rates, seed),
            rate_limit=rate_limit,
            burst=burst,
            retry_after=retry_after,
            knewton_limits=knewton_limits,
            verbose=verbose,
            hostile=hostility,
        )

    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="Pick another --port (0 chooses a free one).",
        ) from None
    typer.echo(f"kprov sandbox listening on {server.base_url}")
    typer.echo(f"  api key: {api_key}   api secret: {SANDBOX_API_SECRET}   (sandbox only)")
    typer.echo(
        f"  try: KPROV_BASE_URL={server.base_url} KPROV_API_KEY={api_key} "
        f"KPROV_API_SECRET={SANDBOX_API_SECRET} kprov auth status"
    )
    typer.echo(
        f"  state: {state or 'in memory (use --state FILE to keep it)'}",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("sandbox stopped")
    finally:
        server.server_close()
        store.close()
