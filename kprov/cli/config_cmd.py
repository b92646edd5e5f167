"""`kprov config show`: every setting a command would use, and where it came from."""

from __future__ import annotations

import typer

from kprov.cli.output import command_group, emit_data, globals_of, guarded

app = command_group("Show the resolved configuration. Example: kprov --profile prod config show")


@app.command("show")
@guarded
def show(
    ctx: typer.Context,
) -> None:
    """Show each setting (profile, URLs, state dir, mapping, lock, rate limits, secret
    sources) with its value and its source: flag, env, config file, default...

    Secrets are never shown, only where they come from.

    \b
    Examples:
      kprov --profile prod config show
      KPROV_PROFILE=prod kprov config show --json | jq .settings.api_secret.source
    """
    from kprov.cli.explain import explain_settings

    rows = explain_settings(globals_of(ctx).settings())
    if globals_of(ctx).json:
        emit_data(ctx, {"settings": {row.key: row.to_json() for row in rows}})
        return
    width = max(len(row.label) for row in rows)
    value_width = min(60, max(len(row.value) for row in rows))
    for row in rows:
        where = f"{row.source}: {row.location}" if row.location else row.source
        typer.echo(f"{row.label:<{width}}  {row.value:<{value_width}}  {where}")
