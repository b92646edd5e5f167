"""`kprov instances`: learning instances (classes), recorded locally under a stable key."""

from __future__ import annotations

import typer

from kprov.cli.common import YES_OPTION, command_line, locked_state
from kprov.cli.completion import complete_instance_key
from kprov.cli.output import command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Column, Fields, Message, Table, said
from kprov.errors import InputError

app = command_group(
    "Create, show, list and delete learning instances. Example: kprov instances create "
    "--graph-id gref-algebra --name 'Algebra I P3' --key alg1-p3"
)


def check_instance_fields(
    name: str, graph_id: str, start: str | None, end: str | None, key: str | None = None
) -> None:
    """Refuse, before sending, what the API would refuse or should never see."""
    from kprov.rosters.dates import DateError, check_order, parse_date
    from kprov.rosters.validate import contains_email, key_problems, name_problems

    problems = [f"--key: {p}" for p in key_problems(key or "")]
    problems += [f"--name: {p}" for p in name_problems(name)]
    problems += [f"--graph-id: {p}" for p in key_problems(graph_id, "graph id")]
    if key is not None and not key.strip():
        problems.append("--key is empty")
    if not name.strip():
        problems.append("--name is empty")
    if contains_email(name):
        problems.append(
            f"--name {name!r} contains an email address; instance names must not hold personal data"
        )
    if not graph_id.strip():
        problems.append("--graph-id is empty")
    for label, value in (("--name", name), ("--graph-id", graph_id)):
        if len(value) > 256:
            problems.append(f"{label} is {len(value)} characters; the API allows 256")
    dates = []
    for label, text in (("--start", start), ("--end", end)):
        try:
            dates.append(parse_date(text) if text else None)
        except DateError as exc:
            problems.append(f"{label} {exc}")
            dates.append(None)
    order = check_order(dates[0], dates[1])
    if order:
        problems.append(order)

    if problems:
        raise InputError(
            "cannot create this learning instance; nothing was sent:", problems=problems
        )


@app.command("create")
@guarded
def create(
    ctx: typer.Context,
    graph_id: str = typer.Option(
        ...,
        "--graph-id",
        metavar="GRAPH",
        help="Knowledge graph id (uuid or gref- label); immutable.",
    ),
    name: str = typer.Option(..., "--name", metavar="NAME", help="Display name; no personal data."),
    start: str | None = typer.Option(None, "--start", metavar="DATE", help="Start date, ISO 8601."),
    end: str | None = typer.Option(None, "--end", metavar="DATE", help="End date, ISO 8601."),
    key: str | None = typer.Option(
        None,
        "--key",
        metavar="KEY",
        help="Your stable key for it (e.g. the SIS "
        "section id); running again with the same key creates "
        "nothing.",
    ),
) -> Message:
    """Create a learning instance and record it under a key.

    \b
    Examples:
      kprov instances create --graph-id gref-algebra --name "Algebra I P3" --key alg1-p3
    """
    from kprov.cli.run_session import admin_run
    from kprov.cli.session import build_client
    from kprov.provision.admin import create_instance
    from kprov.provision.plan import InstanceSpec
    from kprov.provision.ports import ClientApi
    from kprov.provision.run_record import admin_row

    check_instance_fields(name, graph_id, start, end, key)
    settings = globals_of(ctx).settings()
    spec = InstanceSpec(graph_id, name, start or "", end or "")
    row = admin_row(0, "create_instance", instance=key or "", instance_name=name)
    with (
        locked_state(settings, command=command_line()) as state,
        admin_run("instances create", settings, [row]) as run,
    ):
        existing = state.registry.instance_index.find(key) if key else None
        if existing is not None:
            outcome, record = "already_exists", existing
        else:
            with build_client(settings, pool_size=1) as client:
                outcome, record = create_instance(ClientApi(client), state, spec, key)
        word = "instance_created" if outcome == "created" else outcome
        run.done(0, word, instance_id=record.instance_id)
    return said(
        f"{outcome}: {record.key} -> {record.instance_id} ({record.name})",
        outcome=outcome, key=record.key, instance_id=record.instance_id,
        graph_id=record.graph_id, name=record.name,
    )  # fmt: skip


INSTANCE_ARGUMENT = typer.Argument(
    ..., metavar="INSTANCE", help="Instance id or your key.", autocompletion=complete_instance_key
)


@app.command("get")
@guarded
def get(ctx: typer.Context, ref: str = INSTANCE_ARGUMENT) -> Fields:
    """Show a learning instance as the API has it.

    \b
    Examples:
      kprov instances get alg1-p3
    """
    from kprov.api.errors import NotFound
    from kprov.cli.session import build_client
    from kprov.state.registry import Registry

    settings = globals_of(ctx).settings()
    record = Registry.open(settings.state_dir).instance_index.find(ref)
    instance_id = record.instance_id if record else known_instance_id(ref)
    with build_client(settings, pool_size=1, interactive=True) as client:
        try:
            instance = client.get_learning_instance(instance_id)
        except NotFound as missing:
            if record is not None:  # kprov holds a record the API does not know
                missing.hint = (
                    f"kprov records it under the key {record.key!r}; if it really is gone, "
                    f"`kprov instances forget {record.key}` drops it (and the registrations "
                    "kprov recorded in it) from local state, so the next run creates it anew."
                )
            raise
    return Fields({
        "id": instance.id,
        "key": record.key if record else None,
        "graph_id": instance.graph_id,
        "name": instance.name,
        "start_date": instance.start_date,
        "end_date": instance.end_date,
    })  # fmt: skip


@app.command("list")
@guarded
def list_instances(ctx: typer.Context) -> Table:
    """List the learning instances kprov created.

    This is local state: the API has no listing.

    \b
    Examples:
      kprov instances list --json
    """
    from kprov.state.registry import Registry

    settings = globals_of(ctx).settings()
    registry = Registry.open(settings.state_dir)
    records = sorted(registry.instance_index.by_key.values(), key=lambda r: r.key)
    counts: dict[str, int] = {}
    for registration in registry.registration_index.active.values():
        counts[registration.instance_id] = counts.get(registration.instance_id, 0) + 1
    rows = [
        {
            "key": r.key,
            "instance_id": r.instance_id,
            "graph_id": r.graph_id,
            "name": r.name,
            "registrations": counts.get(r.instance_id, 0),
        }
        for r in records
    ]
    return Table("instances", INSTANCE_COLUMNS, rows, empty="no learning instances recorded yet")


INSTANCE_COLUMNS = (
    Column("key", wrap=False), Column("instance_id", "instance id", wrap=False),
    Column("registrations", wrap=False, right=True), Column("name"),
)  # fmt: skip


@app.command("delete")
@guarded
def delete(ctx: typer.Context, ref: str = INSTANCE_ARGUMENT, yes: bool = YES_OPTION) -> Message:
    """Delete a learning instance; its registrations become invalid.

    \b
    Examples:
      kprov instances delete alg1-p3 --yes
    """
    from kprov.cli.run_session import admin_run
    from kprov.cli.session import build_client
    from kprov.provision.admin import delete_instance
    from kprov.provision.run_record import admin_row

    g = globals_of(ctx)
    settings = g.settings()
    with locked_state(settings, command=command_line()) as state:
        record = state.registry.instance_index.find(ref)
        instance_id = record.instance_id if record else known_instance_id(ref)
        active = list(state.registry.registration_index.in_instance(instance_id))
        registrations = len(active)
        confirm(
            f"Delete learning instance {ref} ({instance_id})? Its {registrations} "
            "registrations become invalid and their goal analytics are lost.",
            g.env,
            yes=yes,
        )
        name = record.name if record else ""
        why = "its learning instance was deleted (kprov instances delete)"
        rows = [admin_row(0, "delete_instance", instance=ref, instance_name=name,
                          instance_id=instance_id)]  # fmt: skip
        rows += [
            admin_row(n, "unregister", person=r.external_user_id, role=r.type, instance=ref,
                      instance_name=name, instance_id=instance_id, account_id=r.account_id,
                      registration_id=r.registration_id, reason=why)
            for n, r in enumerate(active, 1)
        ]  # fmt: skip
        with (
            admin_run("instances delete", settings, rows) as run,
            build_client(settings, pool_size=1) as client,
        ):
            instance_id, registrations = delete_instance(client, state, ref)
            for n in range(len(rows)):
                run.done(n, "instance_deleted" if n == 0 else "removed")
    return said(
        f"deleted learning instance {instance_id}; {registrations} registrations are now invalid",
        instance_id=instance_id, registrations_invalidated=registrations,
    )  # fmt: skip


@app.command("forget")
@guarded
def forget(
    ctx: typer.Context,
    key: str = typer.Argument(
        ..., metavar="KEY", help="Your key for the instance.", autocompletion=complete_instance_key
    ),
    check: bool = typer.Option(
        True,
        "--check/--no-check",
        help="First ask the API (one GET) and refuse if the instance still exists there.",
    ),
    yes: bool = YES_OPTION,
) -> Message:
    """Drop a recorded instance the API says does not exist, and its registrations, from local
    state.

    For an instance deleted outside kprov (or recorded from a wrong answer): every run would
    otherwise fail on it with 404. Nothing is sent but the check; the next run that names the
    key creates a new instance for it. Asks first on a terminal; --yes otherwise. Takes the
    state lock.

    \b
    Examples:
      kprov instances forget alg1-p3 --yes
    """
    from kprov.api.errors import NotFound
    from kprov.cli.run_session import admin_run
    from kprov.cli.session import build_client
    from kprov.provision.run_record import admin_row

    g = globals_of(ctx)
    settings = g.settings()
    with locked_state(settings, command=command_line()) as state:
        record = state.registry.instance_index.by_key.get(key)
        if record is None:
            raise InputError(
                f"kprov has no learning instance recorded under the key {key!r}; nothing was "
                "changed",
                hint="`kprov instances list` shows the keys kprov knows.",
            )
        if check:
            try:
                with build_client(settings, pool_size=1, interactive=True) as client:
                    client.get_learning_instance(record.instance_id)
            except NotFound:
                pass  # as expected: it is gone
            else:
                raise InputError(
                    f"the API still has learning instance {record.instance_id} ({key!r}); "
                    "nothing was changed",
                    hint=f"To delete it on the platform: `kprov instances delete {key}`. To "
                    "drop kprov's record anyway (its registrations stay on the server and kprov "
                    "can never remove them): --no-check.",
                )
        active = list(state.registry.registration_index.in_instance(record.instance_id))
        confirm(
            f"Forget learning instance {key!r} ({record.instance_id}) and the {len(active)} "
            "registration(s) kprov recorded in it? Nothing is sent; the next run that names "
            "this key creates a new instance.",
            g.env,
            yes=yes,
        )
        why = "its learning instance was forgotten (kprov instances forget)"
        rows = [admin_row(0, "forget_instance", instance=key, instance_name=record.name,
                          instance_id=record.instance_id)]  # fmt: skip
        rows += [
            admin_row(n, "forget_registration", person=r.external_user_id, role=r.type,
                      instance=key, instance_name=record.name, instance_id=record.instance_id,
                      account_id=r.account_id, registration_id=r.registration_id, reason=why)
            for n, r in enumerate(active, 1)
        ]  # fmt: skip
        with admin_run("instances forget", settings, rows) as run:
            forgotten = state.registry.forget_instance(record)
            for n in range(len(rows)):
                run.done(n, "forgotten")
    return said(
        f"forgotten: {key} ({record.instance_id}) and {forgotten} registration(s)",
        key=key, instance_id=record.instance_id, registrations_forgotten=forgotten,
    )  # fmt: skip


def known_instance_id(ref: str) -> str:
    """*ref* when kprov has no key by that name: it must then be an API id (a UUID), else it
    is a mistyped key, refused instead of being shown as an empty class or sent as an id."""
    from kprov.api_facts import is_uuid

    if is_uuid(ref):
        return ref.lower()  # ids are stored and sent in canonical form
    raise InputError(
        f"kprov knows no learning instance with the key {ref!r}, and it is not an instance id "
        "(a UUID); nothing was sent",
        hint="`kprov instances list` shows the keys kprov knows.",
    )
