"""`kprov config show`: every setting a command would use, and where it came from."""

from __future__ import annotations

import typer

from kprov.cli.output import command_group, globals_of, guarded
from kprov.cli.render_data import Column, Table

app = command_group("Show the resolved configuration. Example: kprov --profile prod config show")


@app.command("show")
@guarded
def show(ctx: typer.Context) -> Table:
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
    shown = [
        {"setting": row.label, "value": row.value,
         "source": f"{row.source}: {row.location}" if row.location else row.source}
        for row in rows
    ]  # fmt: skip
    return Table(
        "settings", SETTING_COLUMNS, shown,
        json={"settings": {row.key: row.to_json() for row in rows}},
    )  # fmt: skip


SETTING_COLUMNS = (Column("setting", wrap=False), Column("value"), Column("source"))
