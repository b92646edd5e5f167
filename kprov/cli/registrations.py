"""`kprov registrations`: what kprov registered (local state) and what the API says."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from kprov.cli.common import YES_OPTION, command_line, locked_state
from kprov.cli.completion import complete_instance_key
from kprov.cli.output import command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Column, Fields, Message, Table, said
from kprov.errors import InputError
from kprov.state.registry import RegistrationRecord

if TYPE_CHECKING:
    from kprov.config import Settings
    from kprov.state.mapping import MappingIndex
    from kprov.state.registry import Registry

app = command_group(
    "List, show, resolve or forget registrations. Example: kprov registrations list "
    "--instance alg1-p3"
)

INSTANCE_OPTION = typer.Option(
    ...,
    "--instance",
    "-i",
    metavar="INSTANCE",
    help="Instance id or key.",
    autocompletion=complete_instance_key,
)
EXTERNAL_ID_ARGUMENT = typer.Argument(..., metavar="ID", help="External id of the registered user.")


@app.command("list")
@guarded
def list_registrations(ctx: typer.Context, instance: str = INSTANCE_OPTION) -> Table:
    """List the registrations kprov recorded in an instance.

    This is local state: the API has no listing.

    \b
    Examples:
      kprov registrations list --instance alg1-p3 --json
    """
    from kprov.cli.instances import known_instance_id
    from kprov.state.registry import Registry

    settings = globals_of(ctx).settings()
    registry = Registry.open(settings.state_dir)
    record = registry.instance_index.find(instance)
    instance_id = record.instance_id if record else known_instance_id(instance)
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
    return Table(
        "registrations", REGISTRATION_COLUMNS, rows, more={"instance_id": instance_id},
        note=f"{len(rows)} registration(s) in {instance}",
    )  # fmt: skip


REGISTRATION_COLUMNS = (
    Column("type", wrap=False), Column("external_user_id", "external id", wrap=False),
    Column("account_id", "account id", wrap=False),
    Column("registration_id", "registration id", text=lambda v: v or "(id unknown)", wrap=False),
)  # fmt: skip


@app.command("get")
@guarded
def get(
    ctx: typer.Context,
    registration_id: str = typer.Argument(..., metavar="REGISTRATION_ID", help="Registration id."),
) -> Fields:
    """Show a registration as the API has it.

    \b
    Examples:
      kprov registrations get d0effd52-c3a7-4a3c-827a-3ac5eaa049a1
    """
    from kprov.cli.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1, interactive=True) as client:
        registration = client.get_registration(registration_id)
    return Fields({
        "id": registration.id,
        "type": registration.type,
        "account_id": registration.account_id,
        "learning_instance_id": registration.learning_instance_id,
        "invalid": registration.invalid,
    })  # fmt: skip


@app.command("unresolved")
@guarded
def unresolved(ctx: typer.Context) -> Table:
    """List registrations kprov knows exist but whose id it never received.

    The API confirmed them ("already registered") after an answer was lost, without their id,
    so kprov cannot remove them (sync --prune reports them instead). Resolve each with
    `kprov registrations resolve`, or drop it with `kprov registrations forget`. This is local
    state; nothing is sent.

    \b
    Examples:
      kprov registrations unresolved --json
    """
    from kprov.state.registry import Registry

    registry = Registry.open(globals_of(ctx).settings().state_dir)
    keys = {r.instance_id: r.key for r in registry.instance_index.by_key.values()}
    rows = [
        {
            "instance": keys.get(r.instance_id, r.instance_id),
            "instance_id": r.instance_id,
            "external_user_id": r.external_user_id,
            "account_id": r.account_id,
            "type": r.type,
            "registered_at": r.created_at,
            "reported": r.noted,
        }
        for r in sorted(
            registry.registration_index.unresolved(),
            key=lambda r: (keys.get(r.instance_id, r.instance_id), r.external_user_id),
        )
    ]
    return Table(
        "unresolved", UNRESOLVED_COLUMNS, rows, note=f"{len(rows)} registration(s) without an id"
    )


UNRESOLVED_COLUMNS = (
    Column("instance", wrap=False), Column("type", wrap=False),
    Column("external_user_id", "external id", wrap=False),
    Column("account_id", "account id", wrap=False),
)  # fmt: skip


@app.command("resolve")
@guarded
def resolve(
    ctx: typer.Context,
    external_id: str = EXTERNAL_ID_ARGUMENT,
    registration_id: str = typer.Argument(
        ..., metavar="REGISTRATION_ID", help="The registration id you found (a UUID)."
    ),
    instance: str = INSTANCE_OPTION,
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Check with the API that the id is this user's registration in this instance.",
    ),
) -> Message:
    """Attach the id of a registration kprov recorded without one, or adopt one it never made.

    Use it when `kprov registrations unresolved` (or `sync --prune`) lists a registration and
    you have learned its id by other means (the API cannot list registrations), or when a run
    says an account is "already registered" in an instance without a type or an id.
    kprov first reads that registration from the API (one GET) and refuses an id that belongs
    to another user, instance or role; afterwards kprov can remove it like any other. Takes the
    state lock.

    \b
    Examples:
      kprov registrations resolve --instance alg1-p3 stu-000123 d0effd52-c3a7-4a3c-827a-3ac5eaa049a1
    """
    from kprov.cli.run_session import admin_run

    registration_id = _canonical_uuid(registration_id)
    settings = globals_of(ctx).settings()
    with locked_state(settings, command=command_line()) as state:
        record = _unresolved_record(state.registry, instance, external_id, state.mapping)
        row = _repair_row("resolve_registration", record, instance, registration_id)
        with admin_run("registrations resolve", settings, [row]) as run:
            if verify or not record.type:
                record = _check_with_api(settings, record, registration_id)
            state.registry.resolve_registration(record, registration_id)
            run.done(0, "resolved", registration_id=registration_id)
    return said(
        f"resolved: {external_id} in {instance} -> registration {registration_id}",
        external_user_id=external_id, registration_id=registration_id,
    )  # fmt: skip


@app.command("forget")
@guarded
def forget(
    ctx: typer.Context,
    external_id: str = EXTERNAL_ID_ARGUMENT,
    instance: str = INSTANCE_OPTION,
    yes: bool = YES_OPTION,
) -> Message:
    """Drop a registration without an id from local state; it stays on the server.

    Use it when nobody can find the id and you accept that the registration stays: kprov will
    never remove it and stops reporting it. If the user is still in the roster, the next run
    registers them again and the API answers "already registered". Nothing is sent. Takes the
    state lock.

    \b
    Examples:
      kprov registrations forget --instance alg1-p3 stu-000123 --yes
    """
    from kprov.cli.run_session import admin_run

    g = globals_of(ctx)
    settings = g.settings()
    with locked_state(settings, command=command_line()) as state:
        record = _unresolved_record(state.registry, instance, external_id)
        confirm(
            f"Forget {external_id}'s registration in {instance}? It stays on the server and "
            "kprov will never remove it.",
            g.env,
            yes=yes,
        )
        row = _repair_row("forget_registration", record, instance, "")
        with admin_run("registrations forget", settings, [row]) as run:
            state.registry.forget_registration(record)
            run.done(0, "forgotten")
    return said(
        f"forgotten: {external_id} in {instance} (still registered on the server)",
        external_user_id=external_id, instance=instance, instance_id=record.instance_id,
    )  # fmt: skip


def _repair_row(
    action: str, record: RegistrationRecord, instance: str, registration_id: str
) -> tuple[object, ...]:
    """The ledger row of a repair of local state (`resolve`, `forget`)."""
    from kprov.provision.run_record import admin_row

    return admin_row(
        0, action, person=record.external_user_id, role=record.type, instance=instance,
        instance_id=record.instance_id, account_id=record.account_id,
        registration_id=registration_id, reason=f"kprov registrations {action.split('_')[0]}",
    )  # fmt: skip


def _canonical_uuid(text: str) -> str:
    import uuid

    try:
        value = uuid.UUID(text.strip())
    except ValueError:
        raise InputError(
            f"{text!r} is not a registration id: ids are UUIDs "
            "(like d0effd52-c3a7-4a3c-827a-3ac5eaa049a1)"
        ) from None
    canonical = str(value)
    if text.strip().lower() != canonical:
        raise InputError(f"{text!r} is not written as a UUID; did you mean {canonical}?")
    return canonical


def _unresolved_record(
    registry: Registry, instance: str, external_id: str, mapping: MappingIndex | None = None
) -> RegistrationRecord:
    """The registration to resolve: one kprov recorded without its id, or (with *mapping*,
    to adopt one kprov never made) a record to be filled from the API (its type unknown)."""
    found = registry.instance_index.find(instance)
    instance_id = found.instance_id if found else instance
    matches = [
        r for r in registry.registration_index.in_instance(instance_id)
        if r.external_user_id == external_id
    ]  # fmt: skip
    account_id = mapping.account_of.get(external_id) if mapping is not None else None
    if not matches and account_id:
        return RegistrationRecord(account_id, instance_id, "", "", external_id)
    if not matches:
        raise InputError(
            f"kprov has no registration of {external_id!r} in {instance!r}",
            hint="See `kprov registrations unresolved` for those that need an id.",
        )
    unresolved = [r for r in matches if r.unresolved]
    if not unresolved:
        raise InputError(
            f"{external_id!r} in {instance!r} already has its registration id "
            f"({matches[0].registration_id}); nothing to resolve or forget"
        )
    return unresolved[0]


def _check_with_api(
    settings: Settings, record: RegistrationRecord, registration_id: str
) -> RegistrationRecord:
    """The record as the API confirms it (its type filled in when kprov did not know it)."""
    from kprov.api.ids import same_id
    from kprov.cli.session import build_client

    with build_client(settings, pool_size=1, interactive=True) as client:
        found = client.get_registration(registration_id)
    matches = (
        same_id(found.account_id, record.account_id)
        and same_id(found.learning_instance_id, record.instance_id)
        and (not record.type or found.type == record.type)
    )
    if not matches or found.invalid:
        raise InputError(
            f"registration {registration_id} is a {found.type or '?'} registration of account "
            f"{found.account_id or '?'} in instance {found.learning_instance_id or '?'}"
            f"{' (invalid)' if found.invalid else ''}, not {record.external_user_id}'s "
            f"({record.account_id}, {record.type or 'any type'}) in {record.instance_id}; "
            "nothing was recorded",
            hint="Check the id; kprov records only an id the API confirms.",
        )
    return record._replace(type=found.type)
