"""What the sandbox and the local files hold at the end of a run, read directly (never
through kprov), and the end state a known input must produce."""

from __future__ import annotations

from pathlib import Path

from kprov.state.mapping import MappingJournal
from kprov.state.registry import Registry
from tests.conftest import Sandbox


def server_accounts(box: Sandbox) -> dict[str, str]:
    with box.store.lock:
        return {
            a["external_user_id"]: a["id"]
            for a in box.store.accounts.values()
            if a["id"] != box.store.admin_id
        }


def roster_enrolments(path: Path) -> set[tuple[str, str, str]]:
    """(external id, instance, role) per roster line; sandbox names instances by their key."""
    found = set()
    for line in path.read_text().splitlines()[1:]:
        ext, role, instance = line.split(",")
        found.add((ext, instance, role))
    return found


def recorded_ids(state_dir: Path) -> set[str]:
    registry = Registry.open(state_dir)
    ids = set(MappingJournal(state_dir / "mapping.csv").load().account_of.values())
    ids |= {r.instance_id for r in registry.instance_index.by_key.values()}
    for record in registry.registration_index.active.values():
        ids |= {record.account_id, record.instance_id, record.registration_id} - {""}
    return ids


def server_ids(box: Sandbox) -> set[str]:
    with box.store.lock:
        return {*box.store.accounts, *box.store.instances, *box.store.registrations}


BULK_EXPECTED = {
    ("u-t1", "Science 7 - Period 1", "instructor"),
    ("u-s1", "Science 7 - Period 1", "learner"),
    ("u-s2", "Science 7 - Period 1", "learner"),
    ("u-t1", "Science 7 - Period 2", "instructor"),
    ("u-s3", "Science 7 - Period 2", "learner"),
    ("u-s4", "Science 7 - Period 2", "learner"),
}
