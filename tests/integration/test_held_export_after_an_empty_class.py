"""A held export sends nothing, even its first line when the class file before it has no
rows (a class with nobody yet) and a OneRoster bundle in the same manifest lists a user in
no class: the real CLI against the sandbox over HTTP, then the server and the mapping file.
main read that first line back as the empty file's, so the re-keyed file's first student
got an account (never deletable) and a registration while the rest were held."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Sandbox
from tests.helpers import run_cli

BUNDLE = Path(__file__).resolve().parent.parent / "data" / "rosters" / "oneroster-1.2"


def night(folder: Path, learners: list[str]) -> str:
    (folder / "empty.csv").write_text("external_user_id,role\n")
    (folder / "b.csv").write_text(
        "external_user_id,role\n" + "".join(f"{x},learner\n" for x in learners) + "t-2,teacher\n"
    )
    manifest = folder / "semester.yaml"
    manifest.write_text(
        "defaults: {graph_id: gref-test}\ninstances:\n"
        "  - {key: geo, name: Geo, people: [{roster: empty.csv}]}\n"
        "  - {key: bio, name: Bio, people: [{roster: b.csv}]}\n"
        f"oneroster:\n  - path: {BUNDLE}\n"
    )
    return str(manifest)


def test_a_held_export_after_a_class_file_without_rows_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    manifest = night(tmp_path, [f"s-{n:03d}" for n in range(22)])
    assert run_cli("sync", manifest).exit_code == 0
    writes, enrolled = sandbox_env.write_requests(), sandbox_env.enrolments()
    mapping = Path(os.environ["KPROV_STATE_DIR"]) / "mapping.csv"
    recorded = mapping.read_bytes()

    night(tmp_path, [f"r-{n:03d}" for n in range(22)])  # re-keyed: held
    held = run_cli("sync", manifest, "--yes")
    assert held.exit_code == 6, held.output
    assert sandbox_env.write_requests() == writes and sandbox_env.enrolments() == enrolled
    assert mapping.read_bytes() == recorded
