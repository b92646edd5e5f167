"""What the operator asked for, as the planner's one input besides local state: ``Request``,
and how each provisioning command builds it from its rosters and options.

The commands differ only here: which lines need accounts, which instances may be created
and how, what may be removed and under which limit. Everything after (``provision.planner``,
the guards, the executor) is the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kprov.api_facts import MAX_FIELD
from kprov.errors import InputError
from kprov.provision.guards import GuardAsk, GuardSettings
from kprov.provision.plan import InstanceSpec
from kprov.rosters.model import ClassInfo, Origin, Person, Roster, Skipped, SourceReading
from kprov.run_settings import DEFAULT_MAX_REMOVALS

if TYPE_CHECKING:  # the manifest reader (YAML, OneRoster pulls) is only for `sync`
    from kprov.rosters.manifest import Manifest


@dataclass(frozen=True)
class Request:
    """What the operator asked for, read from rosters and options: the planner's only input
    besides local state."""

    command: str
    people: Sequence[Person] = ()
    register: bool = True  # False: accounts only (`accounts import`)
    create_accounts: bool = True  # False: --no-create
    default_instance: str | None = None  # --instance
    specs: Mapping[str, InstanceSpec] = field(default_factory=dict)  # creatable instances
    instances: Sequence[str] = ()  # instances that must exist even with nobody in them (sync)
    removals: Sequence[Person] = ()  # explicit: `unregister` ids, delta rows (instance_key set)
    prune: bool = False  # removals may be sent (sync --prune; always for `unregister`)
    authoritative: frozenset[str] = frozenset()  # instances whose full membership is stated
    max_removals: str | None = None  # "12" or "10%"; None: no limit
    skipped: Sequence[Skipped] = ()
    warnings: Sequence[str] = ()
    sources: Sequence[str] = ()
    ids: str = ""  # how external ids were made (kprov.state.owner.ids_made_with); "" unknown
    nobody_is_fine: bool = False  # a delta naming nobody means nothing changed, not a mistake
    # Where each instance is defined (manifest line, bundle class row): a removal's origin,
    # and what tells a move between two classes of one source (``provision.changes``).
    instance_origins: Mapping[str, Origin] = field(default_factory=dict)
    # Instances the input names after their key only for want of a name (a manifest's
    # `rosters:` classes): an existing instance's other name is no change asked for.
    named_by_key: frozenset[str] = frozenset()
    # Where the input says its run's failures go (a manifest's notify:); not the planner's.
    notify: str = ""
    notify_on: str = ""
    guards: GuardSettings = field(default_factory=GuardSettings)  # limits, grace, thresholds
    asked: GuardAsk = field(default_factory=GuardAsk)  # options and manifest keys, as given
    reading: SourceReading = field(default_factory=SourceReading)  # the sources read


def check_command_line_key(value: str | None, option: str, what: str) -> None:
    """Refuse (exit 2, nothing sent) an instance reference or graph id given on the command
    line that a key could never be: control characters, a spreadsheet formula."""
    from kprov.rosters.validate import key_problems

    problems = key_problems(value, what) if value else []
    if problems:
        raise InputError(f"{option}: nothing was sent:", problems=problems)


def accounts_request(
    roster: Roster, *, sources: Sequence[str] = (), max_creations: str | None = None
) -> Request:
    """`accounts import`: an account for every id (enrolled or not), nothing else."""
    return Request(
        command="accounts import",
        people=roster.people,
        register=False,
        skipped=roster.skipped_rows,
        sources=sources,
        asked=GuardAsk(max_creations=checked_limit(max_creations, "--max-creations")),
        reading=files_read(sources, roster),
    )


def checked_limit(value: str | None, option: str) -> str | None:
    """--max-creations N|P%, refused (exit 2) before anything is read or sent."""
    if value is None:
        return None
    from kprov.errors import ConfigError
    from kprov.run_settings import limit_spec

    try:
        return limit_spec(value, option, "it")
    except ConfigError as error:
        raise InputError(error.message.replace(": it must", " must")) from None


def files_read(sources: Sequence[str], roster: Roster) -> SourceReading:
    """The roster files a command read, for the source guard (standard input is no source:
    it has no name to compare from night to night)."""
    from kprov.rosters.headers import file_header

    named = tuple(s for s in sources if s != "-")
    return SourceReading(
        sources=named,
        deltas=frozenset(named) if not roster.complete else frozenset(),
        headers={s: file_header(Path(s)) for s in named},
    )


def instance_specs(
    refs: Sequence[str], graph_id: str | None, classes: Mapping[str, ClassInfo]
) -> dict[str, InstanceSpec]:
    """With --graph-id: how to create each instance a roster names (named by the bundle's
    class title when it has one, else by the key)."""
    if not graph_id:
        return {}
    specs: dict[str, InstanceSpec] = {}
    for ref in dict.fromkeys(refs):
        info = classes.get(ref)
        name = (info.title if info is not None and info.title else ref)[:MAX_FIELD]
        dates = (info.start_date, info.end_date) if info is not None else ("", "")
        specs[ref] = InstanceSpec(graph_id, name, *dates)
    return specs


def register_request(
    roster: Roster,
    *,
    instance: str | None,
    graph_id: str | None,
    create_accounts: bool,
    sources: Sequence[str] = (),
    max_creations: str | None = None,
) -> Request:
    """`register`: registrations for every enrolment line, and the accounts and (with
    --graph-id) instances they need."""
    check_command_line_key(instance, "--instance", "instance key")
    check_command_line_key(graph_id, "--graph-id", "graph id")
    refs = [p.instance_key or instance or "" for p in roster.people if not p.account_only]
    warnings = []
    if roster.removals:
        warnings.append(
            f"{len(roster.removals)} enrolment(s) marked tobedeleted were not removed: "
            "`kprov register` only adds; use `kprov sync --prune` to apply removals"
        )
    return Request(
        command="register",
        people=roster.people,
        default_instance=instance,
        create_accounts=create_accounts,
        specs=instance_specs([r for r in refs if r], graph_id, roster.classes),
        skipped=roster.skipped_rows,
        warnings=warnings,
        sources=sources,
        asked=GuardAsk(max_creations=checked_limit(max_creations, "--max-creations")),
        reading=files_read(sources, roster),
    )


def unregister_request(
    people: Sequence[Person], *, instance: str, max_removals: int | None
) -> Request:
    """`unregister`: the named people out of one instance, under an optional hard limit."""
    check_command_line_key(instance, "--instance", "instance key")
    return Request(
        command="unregister",
        register=False,
        default_instance=instance,
        removals=[p._replace(instance_key=None) for p in people],
        prune=True,
        max_removals=None if max_removals is None else str(max_removals),
    )


def sync_request(
    manifest: Manifest,
    *,
    prune: bool,
    max_removals: str | None,
    max_creations: str | None = None,
    grace: int | None = None,
) -> Request:
    """`sync`: the manifest's whole semester; removals only with --prune, only where the
    manifest states a class's whole membership, never past the limit, never inside the
    grace; creations never past theirs (the options win over the manifest's keys)."""
    keys = manifest.guard_keys
    asked = GuardAsk(
        max_creations=checked_limit(max_creations, "--max-creations")
        or (str(keys["max_creations"]) if "max_creations" in keys else None),
        grace=grace or (int(keys["removal_grace"]) if "removal_grace" in keys else None),
    )
    specs = {
        key: InstanceSpec(spec.graph_id, spec.name, spec.start_date, spec.end_date)
        for key, spec in manifest.instances.items()
    }
    return Request(
        command="sync",
        people=manifest.people,
        specs=specs,
        instances=tuple(manifest.instances),
        removals=manifest.removals,
        prune=prune,
        authoritative=frozenset(manifest.authoritative),
        max_removals=max_removals or DEFAULT_MAX_REMOVALS,
        skipped=manifest.skipped,
        sources=(str(manifest.path), *(str(p) for p in manifest.inputs)),
        instance_origins={key: spec.origin for key, spec in manifest.instances.items()},
        named_by_key=frozenset(k for k, spec in manifest.instances.items() if not spec.named),
        notify=manifest.notify,
        notify_on=manifest.notify_on,
        nobody_is_fine=not manifest.complete,
        asked=asked,
        reading=manifest.reading,
    )
