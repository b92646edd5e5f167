"""`kprov registrations`: what kprov registered (local state) and what the API says."""

from __future__ import annotations

import typer

from kprov.cli.common import JSON_OPTION
from kprov.cli.output import command_group, emit_json, globals_of, guarded

app = command_group(
    "List or show registrations. Example: kprov registrations list --instance alg1-p3"
)


@app.command("list")
@guarded
def list_registrations(
    ctx: typer.Context,
    instance: str = typer.Option(..., "--instance", "-i", help="Instance id or key."),
    json_output: bool = JSON_OPTION,
) -> None:
    """List the registrations kprov recorded in an instance.

    This is local state: the API has no listing.

    \b
    Examples:
      kprov registrations list --instance alg1-p3 --json
    """
    from kprov.state.registry import Registry

    settings = globals_of(ctx).settings()
    registry = Registry.open(settings.state_dir)
    record = registry.instance_index.find(instance)
    instance_id = record.instance_id if record else instance
    rows = [
        {
            "external_user_id": r.external_user_id,
            "account_id": r.account_id,
            "type": r.type,
            "registration_id": r.registration_id or None,
            "registered_at": r.created_at,
        }
        for r in sorted(
            registry.registration_index.in_instance(instance_id),
            key=lambda r: (r.type != "instructor", r.external_user_id),
        )
    ]
    if json_output:
        emit_json({"instance_id": instance_id, "registrations": rows})
        return
    for row in rows:
        typer.echo(
            f"{row['type']}\t{row['external_user_id']}\t{row['account_id']}\t"
            f"{row['registration_id'] or '(id unknown)'}"
        )
    typer.echo(f"{len(rows)} registration(s) in {instance}", err=True)


@app.command("get")
@guarded
def get(
    ctx: typer.Context,
    registration_id: str = typer.Argument(..., help="Registration id."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Show a registration as the API has it.

    \b
    Examples:
      kprov registrations get d0effd52-c3a7-4a3c-827a-3ac5eaa049a1
    """
    from kprov.provision.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1, interactive=True) as client:
        registration = client.get_registration(registration_id)
    data = {
        "id": registration.id,
        "type": registration.type,
        "account_id": registration.account_id,
        "learning_instance_id": registration.learning_instance_id,
        "invalid": registration.invalid,
    }
    if json_output:
        emit_json(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key}: {value}")
