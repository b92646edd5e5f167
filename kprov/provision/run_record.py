"""What a run's record is: who ran it where, with which inputs, and each planned item as a
ledger row (``state.ledger`` stores them; `kprov history` shows them).

Pure functions over the plan, its outcomes and the environment they are given; nothing here
opens the ledger.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kprov.provision.plan import MOVED, NEW_INSTRUCTOR, Action, InstanceSpec, Item, Plan
from kprov.provision.result import Outcome, run_fate
from kprov.rosters.model import INSTRUCTOR, Origin
from kprov.state.ledger import InputFile, RunStart
from kprov.state.registry import Registry

HIDDEN = "<hidden>"
# Options whose value may carry a credential: a Slack or Teams webhook URL is one.
SECRET_OPTIONS = frozenset({"--notify"})
SECRET_ENV = ("KPROV_API_SECRET", "KPROV_ID_KEY", "KPROV_NOTIFY")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Operator:
    """Who ran kprov, where: the OS account, the host and the process."""

    os_user: str
    host: str
    pid: int


def operator() -> Operator:
    """The account the process runs as (from its user id, not from $USER, which anyone can
    set), and who ran it through sudo."""
    try:
        import pwd

        user = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError, AttributeError):  # Windows; a container's uid
        try:
            user = getpass.getuser()
        except (ImportError, KeyError, OSError):  # no pwd, and no LOGNAME/USER/USERNAME
            user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "?"
    through = os.environ.get("SUDO_USER", "")
    if through and through != user:
        user = f"{user} (sudo by {through})"
    return Operator(user, socket.gethostname(), os.getpid())


def scrub_argv(args: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The command line as it may be kept: the value of an option that can hold a
    credential is hidden, a URL keeps only its scheme and host, and any word holding a
    secret the environment gives kprov is hidden (kprov takes none on argv; a slip may)."""
    env = os.environ if env is None else env
    secrets = [env[name] for name in SECRET_ENV if len(env.get(name, "")) >= 4]
    kept: list[str] = []
    hide_next = False
    for word in args:
        if hide_next:
            kept.append(HIDDEN)
            hide_next = False
            continue
        name, equals, _value = word.partition("=")
        if name in SECRET_OPTIONS:
            kept.append(f"{name}={HIDDEN}" if equals else word)
            hide_next = not equals
        elif any(secret in word for secret in secrets):
            kept.append(HIDDEN)
        else:
            kept.append(_url_host_only(word))
    return kept


def resume_command(kept: Sequence[str]) -> str:
    """The command that reruns a run (and so resumes it), from its kept command line: the
    options whose value was hidden are left out (they are set where the job sets them)."""
    import shlex

    words: list[str] = []
    skip = False
    for word in kept:
        if skip:
            skip = False
        elif word.partition("=")[0] in SECRET_OPTIONS:
            skip = "=" not in word
        else:
            words.append(word)
    return "kprov " + shlex.join(words)


def _url_host_only(word: str) -> str:
    if "://" not in word:
        return word
    try:
        parts = urlsplit(word)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return HIDDEN
    if not parts.scheme or not host:
        return HIDDEN
    rest = "/..." if (parts.path not in ("", "/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def run_start(
    run_id: str,
    command: str,
    mode: str,
    *,
    started_at: float,
    profile: str,
    base_url: str,
    argv: Sequence[str],
    who: Operator | None = None,
    parent: str = "",
    job: str = "",
) -> RunStart:
    from kprov import __version__

    who = who or operator()
    return RunStart(
        run_id=run_id,
        command=command,
        mode=mode,
        started_at=started_at,
        os_user=who.os_user,
        host=who.host,
        pid=who.pid,
        kprov_version=__version__,
        profile=profile,
        base_url=base_url,
        argv=json.dumps(scrub_argv(argv)),
        parent=parent,
        job=job,
    )


# ------------------------------------------------------------------------- inputs


def input_files(sources: Sequence[str], *, first: str = "roster") -> list[InputFile]:
    """Every input with its size and SHA-256: files as they are, a bundle folder member by
    member, a zip as one file; standard input by name only (it was consumed). *first* is the
    kind of the first source (`manifest` for sync, `plan` for apply)."""
    found: list[InputFile] = []
    for number, source in enumerate(dict.fromkeys(sources)):
        kind = first if number == 0 else "roster"
        if source == "-":
            found.append(InputFile("<stdin>", "stdin"))
            continue
        path = Path(source)
        if path.is_dir():
            found.append(InputFile(source, "bundle"))
            for member in sorted(p for p in path.iterdir() if p.is_file()):
                found.append(_fingerprint(member, "member"))
            continue
        if path.suffix.lower() == ".zip" and kind == "roster":
            kind = "bundle"
        found.append(_fingerprint(path, kind))
    return found


def _fingerprint(path: Path, kind: str) -> InputFile:
    """Size and SHA-256 of a regular file; a FIFO or a device is never read (opened without
    blocking, then refused): it could hang the run, or never end."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return InputFile(str(path), kind)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return InputFile(str(path), kind)
        if nonblocking:
            os.set_blocking(fd, True)
        digest = hashlib.sha256()
        for block in iter(lambda: os.read(fd, CHUNK), b""):
            digest.update(block)
    except OSError:
        return InputFile(str(path), kind)
    finally:
        os.close(fd)
    return InputFile(str(path), kind, info.st_size, digest.hexdigest())


# -------------------------------------------------------------------------- items


def instance_names(registry: Registry, items: Iterable[Item]) -> dict[str, str]:
    """Instance key (or API id) -> its name, from local state and the plan's own specs."""
    names: dict[str, str] = {}
    index = registry.instance_index
    for item in items:
        ref = item.instance
        if not ref or ref in names:
            continue
        if item.spec is not None:
            names[ref] = item.spec.name
            continue
        record = index.find(ref)
        if record is not None:
            names[ref] = record.name
    return names


def item_rows(
    plan: Plan, names: Mapping[str, str], sis_of: Mapping[str, str]
) -> Iterator[tuple[Any, ...]]:
    """One ledger row per plan item (``state.ledger_writes.ITEM_COLUMNS``)."""
    sis_get, name_get = sis_of.get, names.get
    word = {action: str(action.value) for action in Action}  # .value is a slow property
    for seq, item in enumerate(plan.items):  # unpacked at once: a plan may hold a million
        (action, ext, role, instance, instance_id, account_id, registration_id, sis_id,
         origin, reason, spec, role_change, change, guard) = item  # fmt: skip
        yield (
            seq, word[action], ext, sis_id or sis_get(ext, ""), role, instance,
            name_get(instance, "") if instance else "", instance_id, account_id,
            registration_id, origin.file if origin else "", origin.line if origin else None,
            reason, change, json.dumps(spec._asdict()) if spec is not None else None,
            int(role_change), guard,
        )  # fmt: skip


def admin_row(
    seq: int,
    action: str,
    *,
    person: str = "",
    sis_id: str = "",
    role: str = "",
    instance: str = "",
    instance_name: str = "",
    instance_id: str = "",
    account_id: str = "",
    registration_id: str = "",
    reason: str = "",
) -> tuple[Any, ...]:
    """A ledger row for what a one-off command does outside any plan (`accounts disable`,
    `instances delete`, `registrations resolve` ...): *action* is its own word."""
    return (
        seq, action, person, sis_id, role, instance, instance_name, instance_id, account_id,
        registration_id, "", None, reason, "", None, 0, "",
    )  # fmt: skip


def outcome_row(seq: int, outcome: Outcome) -> tuple[Any, ...]:
    """(seq, outcome, detail, account_id, instance_id, registration_id) for ``set_outcomes``."""
    return (
        seq,
        run_fate(outcome),
        outcome.detail if outcome.detail != outcome.item.reason else "",
        outcome.account_id,
        outcome.instance_id,
        outcome.registration_id,
    )


def outcome_rows(settled: Iterable[tuple[int, Outcome]]) -> list[tuple[Any, ...]]:
    """``outcome_row`` of each (seq, outcome), at once (a batch settles fifty)."""
    return [
        (seq, run_fate(outcome), outcome.detail if outcome.detail != outcome.item.reason else "",
         outcome.account_id, outcome.instance_id, outcome.registration_id)
        for seq, outcome in settled
    ]  # fmt: skip


def item_from_row(row: Mapping[str, Any]) -> Item:
    """The plan item a ledger row was made from, exactly (a held item is applied from it)."""
    spec = InstanceSpec(**json.loads(row["spec"])) if row["spec"] else None
    origin = Origin(row["file"], int(row["line"])) if row["file"] else None
    return Item(
        Action(row["action"]),
        external_id=row["person"],
        role=row["role"],
        instance=row["instance"],
        instance_id=row["instance_id"],
        account_id=row["account_id"],
        registration_id=row["registration_id"],
        sis_id=row["sis_id"],
        origin=origin,
        reason=row["reason"],
        spec=spec,
        role_change=bool(row["role_change"]),
        change=row["change"],
        guard=row.get("guard") or "",
    )


SUCCESS = frozenset({"created", "recovered", "registered", "registered_id_unknown", "removed"})


def event_of(outcome: str | None, change: str) -> str:
    """The word `history --person` shows for one item of one run."""
    if outcome is None:
        return "unfinished"
    if change == MOVED and outcome in SUCCESS:
        return "moved"
    if change == NEW_INSTRUCTOR and outcome in SUCCESS:
        return "instructor changed"
    return outcome


# ------------------------------------------------------------------------ classes


@dataclass(frozen=True)
class ClassLine:
    """A class as an administrator knows it: its key, its name, who teaches it."""

    key: str
    name: str
    instructors: tuple[str, ...]


def class_lines(registry: Registry, plan: Plan, *, applied: bool) -> dict[str, ClassLine]:
    """Every class the plan touches, by key: its name and its instructors, after the run
    (*applied*: local state already holds the result) or as the plan would leave them."""
    names = instance_names(registry, plan.items)
    index = registry.instance_index
    teaching: dict[str, set[str]] = {}
    for record in registry.registration_index.instructors():  # only theirs are made
        if record.type == INSTRUCTOR and record.external_user_id:
            teaching.setdefault(record.instance_id, set()).add(record.external_user_id)
    lines: dict[str, ClassLine] = {}
    kept = (p.instance_key or plan.default_instance for people in plan.kept.values()
            for p in people)  # fmt: skip
    refs = dict.fromkeys([*(i.instance for i in plan.items), *kept])
    for ref in (r for r in refs if r):
        found = index.find(ref)
        if ref not in names and found is not None:
            names[ref] = found.name
        current = set(teaching.get(found.instance_id if found else ref, ()))
        if not applied:
            for item in plan.items:
                if item.instance != ref or item.role != INSTRUCTOR:
                    continue
                if item.action is Action.REGISTER:
                    current.add(item.external_id)
                elif item.action is Action.UNREGISTER and not item.guard:
                    current.discard(item.external_id)
        lines[ref] = ClassLine(ref, names.get(ref, ""), tuple(sorted(current)))
    return lines


def event_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One event of `history --person`: what happened to the person in one run, when, by
    whom, where, from which line, and why."""
    from kprov.state.ledger_queries import iso

    origin = f"{row['file']}:{row['line']}" if row["file"] else ""
    return {
        "run_id": row["run_id"],
        "time": iso(row["started_at"]),
        "run_ended_at": iso(row["ended_at"]),
        "command": row["command"],
        "os_user": row["os_user"],
        "host": row["host"],
        "profile": row["profile"],
        "event": event_of(row["outcome"], row["change"]),
        "action": row["action"],
        "outcome": row["outcome"],
        "person": row["person"],
        "sis_id": row["sis_id"],
        "role": row["role"],
        "instance": row["instance"],
        "instance_name": row["instance_name"],
        "instance_id": row["instance_id"],
        "account_id": row["account_id"],
        "registration_id": row["registration_id"],
        "origin": origin,
        "reason": row["reason"],
        "change": row["change"],
        "detail": row["detail"],
        "recorded_by": "ledger",  # or "journal": ``provision.unrecorded``
    }
