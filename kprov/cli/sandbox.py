"""`kprov sandbox serve`: the local implementation of the API, for trying and testing."""

from __future__ import annotations

import typer

from kprov.cli.output import command_group, guarded
from kprov.errors import InputError

app = command_group(
    "Run a local sandbox of the Knewton v0 API. Example: kprov sandbox serve --port 8765"
)


@app.command("serve")
@guarded
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (loopback only by default)."
    ),
    port: int = typer.Option(8765, "--port", help="Port; 0 picks a free one."),
    state: str | None = typer.Option(
        None, "--state", help="Journal file that keeps the state across restarts."
    ),
    latency_ms: float = typer.Option(
        0.0, "--latency-ms", help="Delay added to every answer.", rich_help_panel="Realism"
    ),
    rate_limit: float | None = typer.Option(
        None,
        "--rate-limit",
        help="Requests per second before 429 (ip-limited), a token bucket.",
        rich_help_panel="Realism",
    ),
    # the rate limiter's shape (burst, Retry-After): the pacing benches need the hard case
    burst: int | None = typer.Option(
        None,
        "--burst",
        min=1,
        help="Requests the --rate-limit bucket saves up [default: one second's worth].",
        rich_help_panel="Realism",
    ),
    retry_after: str = typer.Option(
        "ceil",
        "--retry-after",
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
        3599.0, "--token-ttl", help="Access token lifetime, seconds.", rich_help_panel="Realism"
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
        help="Share of API requests that fail (mix of 503, 500-after-apply, drops, 429).",
        rich_help_panel="Faults",
    ),
    faults: str | None = typer.Option(
        None,
        "--faults",
        help="Exact fault rates, e.g. '503=0.05,500after=0.03,drop=0.02,429=0.01'.",
        rich_help_panel="Faults",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed for fault injection.", rich_help_panel="Faults"
    ),
    api_key: str = typer.Option("sandbox-key", "--api-key", help="API key the sandbox accepts."),
    verbose: bool = typer.Option(False, "--log-requests", help="Log every request."),
) -> None:
    """Serve the documented API on HOST:PORT until Ctrl-C.

    \b
    Examples:
      kprov sandbox serve --latency-ms 20 --fail-rate 0.05 --seed 7
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
