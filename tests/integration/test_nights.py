"""Several nights as a new user ran them, with `--prune --grace 2` as every recipe does, the
real CLI against the sandbox over HTTP on 127.0.0.1 (one sandbox for every night):

- an export that shrank sharply is held visibly whatever the grace: its removals inside
  their grace are withheld by the source guard (not "waiting 1 of 2" night after night), a
  hold is made, exit 6, --notify fires; approving it counts the night and keeps the grace;
- a move and a teacher change keep their names on the night the grace ends, when the
  addition was made a night earlier and nothing in that night's plan pairs with the removal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Sandbox
from tests.helpers import run_cli
from tests.semesters import Semester
from tests.webhook_receiver import receiver

BIG = [f"g-{i}" for i in range(20)]  # the fewest ids the source guard judges


def sync(manifest: str, *extra: str, code: int) -> Any:
    result = run_cli("sync", manifest, "--prune", "--grace", "2", "--max-removals", "100%",
                     "--yes", "--json", *extra)  # fmt: skip
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def reasons(document: Any, person: str) -> list[tuple[str, str]]:
    return [(i["outcome"], i["reason"]) for i in document["items"]
            if i["external_user_id"] == person]  # fmt: skip


def test_a_shrunk_export_is_held_with_grace_2_and_moves_keep_their_names_when_the_grace_ends(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(3)])
    semester.set_class("bio", ["t-2"], [f"b-{i}" for i in range(3)])
    semester.set_class("big", ["t-3"], BIG)
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0

    # the export of `big` is cut to under a third; a-0 moves alg → bio; bio's teacher t-2 → t-9
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(1, 3)])
    semester.set_class("bio", ["t-9"], [f"b-{i}" for i in range(3)] + ["a-0"])
    semester.set_class("big", ["t-3"], BIG[:6])
    semester.write()
    with receiver() as hook:
        second = sync(manifest, "--notify", hook.url, code=6)
        assert [d["exit_code"] for d in hook.documents] == [6]
    [trip] = second["guards"]
    assert trip["guard"] == "source" and trip["items"] == 14 and "shrank sharply" in trip["why"]
    assert second["hold_id"] and second["counts"]["withheld"] == 14
    [(fate, why)] = reasons(second, "g-19")
    assert fate == "withheld" and "frozen" in why and "absent from" not in why
    assert reasons(second, "a-0") == [
        ("registered", "moved alg → bio"),
        ("waiting", "moved alg → bio; waiting 1 of 2 (absent from 1 run; --grace 2)"),
    ]

    third = sync(manifest, code=6)  # the same files: held again, the grace frozen
    assert third["counts"]["withheld"] == 14 and "removed" in third["counts"]
    [(fate, why)] = reasons(third, "g-19")
    assert fate == "withheld" and "frozen at 0 of 2" in why
    assert reasons(third, "a-0") == [("removed", "moved alg → bio")]
    assert reasons(third, "t-2") == [("removed", "instructor changed: t-2 → t-9")]
    events = run_cli("history", "--person", "a-0", "--json")
    assert [e["event"] for e in json.loads(events.stdout)["events"]][-1] == "moved"

    # approving counts the night (a person confirmed the export) and keeps the grace
    approved = run_cli("holds", "approve", third["hold_id"], "--yes", "--json")
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["counts"] == {"waiting": 14}
    assert {e[0] for e in sandbox_env.enrolments()} >= set(BIG)
    fourth = sync(manifest, code=0)  # judged against the approved export: not held
    assert fourth["counts"]["removed"] == 14 and "withheld" not in fourth["counts"]
    assert sandbox_env.enrolments() == semester.expected()
