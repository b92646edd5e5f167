"""What the journals say about a person's items whose outcome a killed run never recorded.

A run records its items before it sends them, and their outcomes in groups (every 2,000
items or 5 seconds) after the journals: the journals are the facts, the ledger their story.
A run killed in between made accounts and registrations whose outcome the ledger never
heard of, and its rerun finds them already as asked, which it counts but does not itemise:
`history --person` would end that person's story at "unfinished" for good. For such an
item this reads the journals (without the lock: they are only ever appended to) and adds
what they record as an event of its own, named after the file and line that says so, never
as the run's outcome, which nobody recorded.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kprov.provision.plan import Action
from kprov.state.journal import CsvJournal

IN_MAPPING, IN_REGISTRY = "in the mapping", "in the registry"
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # what kprov writes; else no time
_UNFINISHED = "unfinished"
_BLOCK = 1 << 22  # characters of a journal searched at a time


def with_journal_events(
    events: Sequence[dict[str, Any]],
    mapping_path: Path,
    state_dir: Path,
    *,
    running: Collection[str] = (),
) -> list[dict[str, Any]]:
    """*events* (one person's, oldest first), each account and registration whose last item
    is unfinished followed by the journal row that records it, if one does. No journal is
    read when every item has its outcome (the usual case); a journal that cannot be read
    adds nothing here (the next run names what is wrong with it). An item of a run still
    *running* (its ids) is not unfinished but pending: its run records its outcome."""
    from kprov.errors import ConfigError, StorageError

    accounts: dict[str, Mapping[str, Any]] = {}
    registrations: dict[tuple[str, str], Mapping[str, Any]] = {}
    for event in events:  # the last item of each account and registration wins
        if event["action"] == Action.CREATE_ACCOUNT:
            accounts[event["person"]] = event
        elif event["action"] in (Action.REGISTER, Action.UNREGISTER):
            registrations[(event["person"], event["instance"])] = event
    open_accounts = {
        p: e
        for p, e in accounts.items()
        if e["event"] == _UNFINISHED and e["run_id"] not in running
    }
    open_registrations = [
        e
        for e in registrations.values()
        if e["event"] == _UNFINISHED and e["action"] == "register" and e["run_id"] not in running
    ]
    found: list[dict[str, Any]] = []
    try:
        if open_accounts:
            found += _mapped(mapping_path, open_accounts)
        if open_registrations:
            found += _registered(state_dir, open_registrations)
    except (ConfigError, StorageError, OSError):
        pass
    after = {id(f["of"]): f for f in found}
    merged: list[dict[str, Any]] = []
    for event in events:
        merged.append(event)
        if id(event) in after:
            merged.append({k: v for k, v in after[id(event)].items() if k != "of"})
    return merged


def _mapped(path: Path, unfinished: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    from kprov.state.mapping import STATUS_CREATED, STATUS_RECOVERED, MappingJournal

    found: list[dict[str, Any]] = []
    left = dict(unfinished)
    for line, row in _rows_naming(MappingJournal(path), left, 0):
        person, account_id, created_at, _sis, status = (row + [""] * 5)[:5]
        item = left.get(person)
        if item is None or status not in (STATUS_CREATED, STATUS_RECOVERED):
            continue
        if _before(created_at, item["time"]):
            continue  # there before the run (another mapping, or a backup restored since)
        del left[person]  # its first row since the run: when the account entered the mapping
        why = f"the mapping records account {account_id.lower()} ({status} {created_at})"
        found.append(_event(item, IN_MAPPING, f"{path.name}:{line}", created_at, why,
                            account_id=account_id.lower()))  # fmt: skip
        if not left:
            break
    return found


def _registered(state_dir: Path, unfinished: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    from kprov.state.registry import (
        REGISTRY_FILES,
        InstanceJournal,
        RegistrationJournal,
    )
    from kprov.state.registry_instances import INSTANCE_CREATED
    from kprov.state.registry_rows import NOTED, REGISTERED

    keys = {e["instance"] for e in unfinished if not e["instance_id"]}
    ids_of_keys: dict[str, str] = {}
    if keys:  # classes the killed run created: their ids are in the instance journal
        for _line, row in InstanceJournal(state_dir / REGISTRY_FILES[0]).rows():
            if row[0] in keys and row[1] and row[-1] == INSTANCE_CREATED:
                ids_of_keys[row[0]] = row[1].lower()
    wanted: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in unfinished:
        instance_id = str(item["instance_id"] or ids_of_keys.get(item["instance"], "")).lower()
        if instance_id:
            wanted[(item["person"], instance_id)] = item
    last: dict[tuple[str, str], tuple[int, list[str]]] = {}
    made: dict[tuple[str, str], tuple[int, list[str]]] = {}
    path = state_dir / REGISTRY_FILES[1]
    people = {person for person, _instance in wanted}
    for line, row in _rows_naming(RegistrationJournal(path), people, 4) if wanted else ():
        key = (row[4] if len(row) > 4 else "", row[1].lower())
        if key in wanted:
            last[key] = (line, row)  # its last row says where it stands now
            if row[-1] == REGISTERED:
                made[key] = (line, row)  # and its last registered row, when it was made
    found: list[dict[str, Any]] = []
    for key, (line, row) in last.items():
        if row[-1] == NOTED and key in made:  # a notice's row is dated by the notice
            line, row = made[key]
        account_id, instance_id, kind, registration_id, _person, created_at, status = (
            row + [""] * 7
        )[:7]
        if status not in (REGISTERED, NOTED):
            continue  # a request without its answer, or removed since: nothing to add
        item = wanted[key]
        if kind != item["role"] or _before(created_at, item["time"]):
            continue  # one that was there before the run (a role change it never sent)
        said = f"registration {registration_id.lower()}" if registration_id else "a registration"
        why = f"the registry records {said} ({kind}, {created_at})"
        found.append(_event(item, IN_REGISTRY, f"{path.name}:{line}", created_at, why,
                            account_id=account_id.lower(), instance_id=instance_id.lower(),
                            registration_id=registration_id.lower()))  # fmt: skip
    return found


def _rows_naming(
    journal: CsvJournal, texts: Collection[str], column: int
) -> Iterator[tuple[int, list[str]]]:
    """The rows of *journal* whose cell *column* may be one of *texts* (the caller checks),
    with their line numbers: the text searched a block at a time for each text as a whole
    cell, only the lines found parsed (a million mapping lines in a tenth of a second, where
    parsing each took 2.3 s; an id found inside other cells, "12" in every December date,
    costs nothing). A journal with a quote anywhere (a quoted cell may hold a line break:
    lines are no longer rows) is read row by row instead, as every reader does."""
    found: dict[int, str] = {}
    with journal.text() as handle:  # the header checked, a torn last line left out
        if handle is None:
            return
        lines_before = 0
        while block := handle.read(_BLOCK) + handle.readline():
            if '"' in block:
                break
            for text in texts:
                counted, number = 0, lines_before + 1
                for begin in _line_starts(block, text, column):
                    number += block.count("\n", counted, begin)  # from the last line found:
                    counted = begin  # counting from the block's start each time was quadratic
                    end = block.find("\n", begin) % (len(block) + 1)  # -1: the block's end
                    if number > 1:  # not the header
                        found[number] = block[begin:end]
            lines_before += block.count("\n")
        else:
            for number in sorted(found):
                try:
                    row = next(csv.reader([found[number]]), [])
                except csv.Error:  # a lone carriage return, say
                    row = []
                if len(row) != len(journal.header) or not journal.valid(row):
                    raise journal._damaged(number, number, row, "")  # then nothing is said
                yield number, row
            return
    yield from ((n, row) for n, row in journal.rows() if row[column] in texts)


def _line_starts(block: str, text: str, column: int) -> Iterator[int]:
    """Where each line of *block* (whole lines, unquoted) whose cell *column* may be *text*
    begins, in order: *text* found between the delimiters that cell has (a line start or a
    comma before it, a comma after it: *column* is never a row's last)."""
    if column == 0:
        if block.startswith(text + ","):
            yield 0
        needle, skip = "\n" + text + ",", 1
    else:
        needle, skip = "," + text + ",", 0
    at = block.find(needle)
    while at >= 0:
        yield at + 1 if skip else block.rfind("\n", 0, at) + 1
        at = block.find(needle, block.find("\n", at + skip) % (len(block) + 1))


def _before(stamp: str, start: str | None) -> bool:
    """Whether a journal row's time is before its item's run began (both as kprov writes
    them: UTC to the second, so the text order is the time order)."""
    return bool(start) and _STAMP.fullmatch(stamp) is not None and stamp < str(start)


def _event(
    item: Mapping[str, Any], word: str, origin: str, stamp: str, why: str, **ids: str
) -> dict[str, Any]:
    """An event with the keys of every other (``run_record.event_record``): the unfinished
    item's run, operator, person and class; the journal's time, file and line."""
    event = dict(item)
    event.update(
        of=item, time=stamp if _STAMP.fullmatch(stamp) else None, event=word, outcome=None,
        origin=origin, reason="", change="", recorded_by="journal",
        detail=f"{why}; the run ended before recording its outcome", **ids,
    )  # fmt: skip
    return event
