"""The options every provisioning command shares, declared once (pip's ``cmdoptions``).

`sync`, `apply`, `register`, `unregister`, `accounts import` and `holds approve` take the
same run options. Each is declared once in ``SHARED``, in one of four groups; a command
names its groups with ``@run_options(...)`` and receives them as one frozen ``RunOptions``
(its parameter ``options``), checked before anything is read or sent. To give every
provisioning command a new option: add its ``Shared`` line here (group ``RUN``) and its
field to ``RunOptions``, then use ``options.NAME`` in the flow (docs/development.md).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

import typer

from kprov.cli.common import (
    HASH_IDS_OPTION,
    MAPPING_OPTION,
    OUTPUT_PANEL,
    REBUILD_MAPPING_OPTION,
    RUN_PANEL,
    YES_OPTION,
)
from kprov.run_settings import DEFAULT_MAX_CREATIONS

F = TypeVar("F", bound=Callable[..., Any])

RUN = "run"  # every provisioning command
PLANNING = "planning"  # the commands that read input and plan (not `apply`, `holds approve`)
CREATING = "creating"  # the commands that create accounts from input (the creation brake)
ASKING = "asking"  # the commands that ask before removing or applying (--yes)


# Shared with commands that are not provisioning runs (`mapping verify`, `history`, ...):
CONCURRENCY_OPTION = typer.Option(
    4, "--concurrency", "-c", min=1, max=64, metavar="N",
    help="Requests in flight at once.", rich_help_panel=RUN_PANEL,
)  # fmt: skip
TEST_ACCOUNTS_OPTION = typer.Option(
    False, "--test-accounts",
    help="Mark the accounts kprov creates as test accounts (X-Knewton-Test: true).",
    rich_help_panel=RUN_PANEL,
)  # fmt: skip
LOCK_TIMEOUT_OPTION = typer.Option(
    0.0, "--lock-timeout", min=0, metavar="SECONDS",
    help="Seconds to wait for another kprov run to finish.", rich_help_panel=RUN_PANEL,
)  # fmt: skip


@dataclass(frozen=True)
class RunOptions:
    """What the provisioning commands share: the shared options' values, and what a command
    adds of its own (``replace(options, ...)``)."""

    concurrency: int = 4
    plan_only: bool = False  # --plan / --dry-run: show, send nothing
    out: Path | None = None  # --out PLAN.json, with --plan
    detailed_exitcode: bool = False
    report: Path | None = None
    log_file: Path | None = None
    lock_timeout: float = 0.0
    test_accounts: bool = False
    yes: bool = False
    mapping: str | None = None
    hash_ids: bool = False  # --hash-ids: external ids are HMACs of the SIS ids
    rebuild_mapping: bool = False  # --rebuild-mapping: recover a lost mapping from the registry
    max_creations: str | None = None  # --max-creations N|P% (else the manifest's, the profile's)
    notify: str | None = None  # --notify URL (else the manifest's, KPROV_NOTIFY, the profile's)
    notify_on: str | None = None  # --notify-on failure|always
    metrics_file: Path | None = None  # --metrics-file PATH (else KPROV_METRICS_FILE, profile)
    # Set by the command, not by an option:
    ask_before_removing: bool = False  # ask on a terminal when the plan removes (sync --prune)
    must_confirm_removals: bool = False  # refuse without a terminal unless --yes (unregister)
    cron_quiet: bool = False  # print nothing when all is well and nobody watches (sync)
    progress: bool = False  # a progress bar (set from the view: a terminal, not --quiet/--json)
    # the delta cursors of this run's pulls (sync), saved with its end when nothing failed
    cursors: Callable[[], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class Shared:
    """One shared option: the ``RunOptions`` field it fills (and its parameter's name), its
    type, its declaration, its group, and whether --help lists it before the command's own
    options (``lead``) or after them."""

    field: str
    annotation: Any
    option: Any  # typer.Option(...)
    group: str = RUN
    lead: bool = False


SHARED = (
    Shared("plan_only", bool, typer.Option(
        False, "--plan", "--dry-run",
        help="Show the plan (who is added, removed, and why); send nothing.",
        rich_help_panel=RUN_PANEL,
    ), PLANNING, lead=True),
    Shared("max_creations", str | None, typer.Option(
        None, "--max-creations", metavar="N|P%",
        help="Most accounts created in one run, N or P% of the people in the mapping "
        f"[default: {DEFAULT_MAX_CREATIONS}; a share sets none while it holds fewer than "
        "100, a number always applies]; past it the creations and what needs them are held "
        "for approval (exit 6; kprov holds).",
        rich_help_panel=RUN_PANEL, show_default=False,
    ), CREATING),
    Shared("concurrency", int, CONCURRENCY_OPTION),
    Shared("test_accounts", bool, TEST_ACCOUNTS_OPTION),
    Shared("lock_timeout", float, LOCK_TIMEOUT_OPTION),
    Shared("hash_ids", bool, HASH_IDS_OPTION, PLANNING),
    Shared("mapping", str | None, MAPPING_OPTION),
    Shared("rebuild_mapping", bool, REBUILD_MAPPING_OPTION, PLANNING),
    Shared("yes", bool, YES_OPTION, ASKING),
    Shared("out", Path | None, typer.Option(
        None, "--out", metavar="FILE",
        help="With --plan: save the plan to FILE.json, to review and then "
        "`kprov apply FILE.json`.",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    ), PLANNING),
    Shared("detailed_exitcode", bool, typer.Option(
        False, "--detailed-exitcode",
        help="With --plan: exit 10 when the plan has changes, 0 when there is nothing to do.",
        rich_help_panel=OUTPUT_PANEL,
    ), PLANNING),
    Shared("report", Path | None, typer.Option(
        None, "--report", metavar="FILE",
        help="Every line's fate to FILE.csv or FILE.json; a summary (totals, per class, "
        "failures, removals) to FILE.html. For plans and runs.",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    )),
    Shared("log_file", Path | None, typer.Option(
        None, "--log-file", metavar="FILE",
        help="Append one JSON line per run to FILE (who was added, removed, what failed).",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    )),
    Shared("notify", str | None, typer.Option(
        None, "--notify", metavar="URL",
        help="POST a JSON summary (its `text` field is what Slack and Teams display) to this "
        "incoming-webhook URL after a run that failed, stopped, or held anything (default: "
        "the manifest's notify:, KPROV_NOTIFY, the profile's notify).",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    )),
    Shared("notify_on", str | None, typer.Option(
        None, "--notify-on", metavar="WHEN", help="failure (the default) or always.",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    )),
    Shared("metrics_file", Path | None, typer.Option(
        None, "--metrics-file", metavar="FILE",
        help="Replace FILE.prom (Prometheus text format, for node_exporter's textfile "
        "collector) with this run's outcome at its end (default: KPROV_METRICS_FILE, the "
        "profile's metrics_file).",
        rich_help_panel=OUTPUT_PANEL, show_default=False,
    )),
)  # fmt: skip


def run_options(
    *, planning: bool = False, creating: bool = False, asking: bool = False
) -> Callable[[F], F]:
    """Give a provisioning command the shared options of its groups (``RUN`` always), and
    call it with them as ``options: RunOptions``, checked (``checked_options``)."""
    groups = {RUN} | {g for g, on in ((PLANNING, planning), (CREATING, creating),
                                      (ASKING, asking)) if on}  # fmt: skip
    wanted = [s for s in SHARED if s.group in groups]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {s.field: kwargs.pop(s.field) for s in wanted}
            return func(*args, options=checked_options(RunOptions(**given)), **kwargs)

        signature = inspect.signature(func, eval_str=True)
        wrapper.__signature__ = _with_shared(signature, wanted)  # type: ignore[attr-defined]
        hints = {k: v for k, v in func.__annotations__.items() if k != "options"}
        wrapper.__annotations__ = {**hints, **{s.field: s.annotation for s in wanted}}
        return wrapper  # type: ignore[return-value]

    return decorate


def _with_shared(signature: inspect.Signature, wanted: list[Shared]) -> inspect.Signature:
    """The command's parameters with ``options`` replaced by the shared ones: the lead
    ones after its arguments, the others after its own options (the order of --help)."""
    own = [p for p in signature.parameters.values() if p.name != "options"]
    taken = {p.name for p in own} & {s.field for s in wanted}
    assert not taken, f"{sorted(taken)}: declared by the command and shared"
    assert len(own) < len(signature.parameters), "the command takes no `options` parameter"
    arguments = [p for p in own if not isinstance(p.default, typer.models.OptionInfo)]
    options = [p for p in own if isinstance(p.default, typer.models.OptionInfo)]

    def parameter(shared: Shared) -> inspect.Parameter:
        return inspect.Parameter(
            shared.field,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=shared.option,
            annotation=shared.annotation,
        )

    leading = [parameter(s) for s in wanted if s.lead]
    trailing = [parameter(s) for s in wanted if not s.lead]
    return signature.replace(parameters=[*arguments, *leading, *options, *trailing])


def checked_options(options: RunOptions) -> RunOptions:
    """--notify and --notify-on checked (a bad one is bad input: exit 2, nothing read or
    sent), and the output files' folders and the options that only go with --plan."""
    from kprov.errors import ConfigError, InputError
    from kprov.run_settings import parse_value

    try:
        url = parse_value("notify", options.notify, "--notify") if options.notify else None
        on = options.notify_on and parse_value("notify_on", options.notify_on, "--notify-on")
    except ConfigError as error:
        raise InputError(error.message, hint=error.hint) from None
    _check_outputs(options)
    return replace(options, notify=url, notify_on=on or None)


def _check_outputs(options: RunOptions) -> None:
    """Refuse unusable output options before any work is done."""
    from kprov.errors import InputError

    if options.report is not None:  # the report's module is read only for a report
        from kprov.provision.report import check_report_path

        check_report_path(options.report)
    for option, path in (("--report", options.report), ("--out", options.out),
                         ("--log-file", options.log_file),
                         ("--metrics-file", options.metrics_file)):  # fmt: skip
        if path is not None and not path.parent.is_dir():
            raise InputError(
                f"{option} {path}: the folder {path.parent} does not exist; nothing was sent",
                hint="Create it first (kprov does not create folders a typo could name).",
            )
    if options.out is not None and not options.plan_only:
        raise InputError("--out saves a plan: use it with --plan (then `kprov apply FILE`)")
    if options.detailed_exitcode and not options.plan_only:
        raise InputError("--detailed-exitcode describes a plan: use it with --plan")


FIELDS = frozenset(f.name for f in fields(RunOptions))
assert {s.field for s in SHARED} <= FIELDS, "every shared option fills a RunOptions field"
