"""Rosters and manifests written for end-to-end tests: a semester night by night, one large
roster with an instance column, and a one-class manifest."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Sandbox
from tests.helpers import run_cli


class Semester:
    """A manifest with one CSV roster per class, rewritten night by night."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.classes: dict[str, dict[str, list[str]]] = {}

    def set_class(self, key: str, instructors: list[str], learners: list[str]) -> None:
        self.classes[key] = {"instructors": instructors, "learners": learners}

    def write(self) -> Path:
        lines = ["defaults:", "  graph_id: gref-test", "instances:"]
        for key, people in self.classes.items():
            roster = self.folder / f"{key}.csv"
            roster.write_text("external_user_id\n" + "".join(f"{x}\n" for x in people["learners"]))
            lines += [
                f"  - key: {key}",
                f"    name: Class {key}",
                "    people:",
                f"      - instructors: [{', '.join(people['instructors'])}]",
                f"      - roster: {roster.name}",
                "        role: learner",
            ]
        manifest = self.folder / "semester.yaml"
        manifest.write_text("\n".join(lines) + "\n")
        return manifest

    def expected(self) -> set[tuple[str, str, str]]:
        return {
            (person, f"Class {key}", role)
            for key, people in self.classes.items()
            for role, group in (
                ("instructor", people["instructors"]),
                ("learner", people["learners"]),
            )
            for person in group
        }


def first_night(folder: Path, box: Sandbox) -> Semester:
    semester = Semester(folder)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(20)])
    semester.set_class("bio", ["t-2"], [f"b-{i}" for i in range(20)])
    result = run_cli("sync", str(semester.write()))
    assert result.exit_code == 0, result.output
    assert box.enrolments() == semester.expected()
    return semester


def semester_roster(path: Path, instances: int, learners: int) -> Path:
    rows = ["external_user_id,role,instance"]
    for c in range(instances):
        rows.append(f"t-{c:03d},instructor,class-{c:03d}")
        rows.extend(f"s-{c:03d}-{i:03d},learner,class-{c:03d}" for i in range(learners))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


ONE_CLASS_MANIFEST = (
    "instances:\n  - key: c1\n    name: Class one\n    graph_id: gref-demo\n"
    "    people:\n      - instructors: [t-1]\n      - learners: [s-1, s-2, s-3]\n"
)
