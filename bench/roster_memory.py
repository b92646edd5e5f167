"""P4 (rosters): checking a 10,000,000-row roster streams, within 1 GiB of memory.

Two figures, each in its own process, measured by that process's peak RSS:
- *check*: `kprov.rosters.check_rosters` validates every row (ids, roles, duplicates) and
  accepts the roster, keeping no people;
- *refuse*: `kprov accounts import ROSTER --dry-run` on the same roster with one duplicate
  on its last line: it must be refused (exit 2) without first building ten million people.
The roster is generated in a temporary directory at run time. Prints one line.
With `--format clever` (or `canvas`), the roster is a Clever export (schools, students,
teachers, sections, enrollments) or a Canvas SIS import (users, courses, enrollments) of that
many enrollment rows, five a student: the readers that resolve every reference keep the ids
referred to, never the people.

    python bench/roster_memory.py [--rows 10000000] [--format csv|clever]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from itertools import chain
from pathlib import Path
from typing import TextIO

BOUND_MIB = 1024
CHECK = (
    "import sys; from pathlib import Path; from kprov.rosters import check_rosters; "
    "print(check_rosters([Path(sys.argv[1])]).people)"
)


def write_lines(out: TextIO, count: int, lines: Callable[[int], Iterable[str]]) -> None:
    """Write ``lines(i)`` for i in 0..count-1, joined 20,000 at a time: a string of ten
    million rows would cost more memory than the reading being measured."""
    for start in range(0, count, 20_000):
        out.write(
            "".join(chain.from_iterable(map(lines, range(start, min(start + 20_000, count)))))
        )


def write_roster(path: Path, rows: int, duplicate_last: bool) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("external_user_id,role,instance\n")
        write_lines(out, rows, lambda i: (f"stu-{i:08d},learner,sec-{i % 4000:04d}\n",))
        if duplicate_last:
            out.write("stu-00000007,learner,sec-0007\n")


def write_clever(folder: Path, rows: int, duplicate_last: bool) -> None:
    """A Clever export: *rows* enrollments, five a student, thirty students a section."""
    folder.mkdir()
    students = max(rows // 5, 1)
    sections = max(students * 5 // 30, 1)
    (folder / "schools.csv").write_text("School_id,School_name\r02M800,High\r", newline="")
    with (folder / "teachers.csv").open("w", newline="") as out:
        out.write("School_id,Teacher_id,Last_name,Password\r")
        out.writelines(f"02M800,t{t},Name,pw\r" for t in range(sections))
    with (folder / "sections.csv").open("w", newline="") as out:
        out.write("School_id,Section_id,Teacher_id,Teacher_2_id,Name,Term_start,Term_end\r")
        out.writelines(f"02M800,{s},t{s},,Class {s},8/24/26,6/11/27\r" for s in range(sections))
    with (folder / "students.csv").open("w", newline="") as out:
        out.write("School_id,Student_id,Last_name,Password\r\n")
        write_lines(out, students, lambda i: (f"02M800,{100000000 + i},Name,pw\r\n",))
    with (folder / "enrollments.csv").open("w", newline="") as out:
        out.write("School_id,Section_id,Student_id\n")
        write_lines(
            out, students, lambda i: (f"02M800,{(i * 5 + k) % sections},{100000000 + i}\n"
                                      for k in range(5))
        )  # fmt: skip
        if duplicate_last:
            out.write("02M800,0,100000000\n")


def write_canvas(folder: Path, rows: int, duplicate_last: bool) -> None:
    """A Canvas SIS import: *rows* enrollments, five courses a student, two sections a course
    for one student in ten (the same course twice: one line)."""
    folder.mkdir()
    users = max(rows // 5, 1)
    courses = max(users * 5 // 30, 1)
    with (folder / "users.csv").open("w", newline="") as out:
        out.write("user_id,login_id,password,email,status\n")
        write_lines(out, users, lambda i: (f"u{i},l{i},pw,u{i}@example.edu,active\n",))
    with (folder / "courses.csv").open("w", newline="") as out:
        out.write("course_id,short_name,long_name,status\n")
        out.writelines(f"c{c},C{c},Course {c},active\n" for c in range(courses))
    with (folder / "enrollments.csv").open("w", newline="") as out:
        out.write("course_id,user_id,role,section_id,status\n")
        write_lines(
            out, users, lambda i: (f"c{(i * 5 + (k if i % 10 else k % 4)) % courses},u{i},"
                                   "student,,active\n" for k in range(5))
        )  # fmt: skip
        if duplicate_last:
            out.write("c0,u0,teacher,,active\n")  # u0 is a student of c0: a role conflict


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MiB, exit code, stdout) of one child process, by wait4."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err)
        assert child.stdout is not None
        out = child.stdout.read().decode()
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped: tell Popen
    return time.monotonic() - started, usage.ru_maxrss / 1024, child.returncode, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("csv", "clever", "canvas"), default="csv")
    args = parser.parse_args()
    write = {"csv": write_roster, "clever": write_clever, "canvas": write_canvas}[args.format]
    with tempfile.TemporaryDirectory(prefix="kprov-p4-") as scratch:
        folder = Path(scratch)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
        env.update(
            {
                "KPROV_BASE_URL": "http://127.0.0.1:9/v0",
                "KPROV_API_KEY": "k",
                "KPROV_CONFIG": str(folder / "c.yaml"),
                "KPROV_STATE_DIR": str(folder),
            }
        )
        suffix = ".csv" if args.format == "csv" else ""
        good, bad = folder / f"roster{suffix}", folder / f"refused{suffix}"
        write(good, args.rows, duplicate_last=False)
        size_mb = _size(good) / 1e6
        check = measure([sys.executable, "-c", CHECK, str(good)], env)
        _remove(good)
        write(bad, args.rows, duplicate_last=True)
        refuse = measure(
            [sys.executable, "-m", "kprov", "accounts", "import", str(bad), "--dry-run"], env
        )
    expected = {
        "csv": args.rows,
        "clever": _clever_people(args.rows),
        "canvas": args.rows - max(args.rows // 5, 1) // 10,  # one line per person and course
    }[args.format]
    accepted = check[2] == 0 and check[3].strip() == str(expected)
    refused = refuse[2] == 2
    worst = max(check[1], refuse[1])
    verdict = "FAILED" if not (accepted and refused) else "ok" if worst <= BOUND_MIB else "OVER"
    print(
        f"roster_memory format={args.format} rows={args.rows:,} ({size_mb:.0f} MB): "
        f"check {check[0]:.1f}s peak_rss={check[1]:.0f}MiB ({check[1] / BOUND_MIB:.2f} of "
        f"{BOUND_MIB}MiB); refuse (duplicate on the last line) {refuse[0]:.1f}s "
        f"peak_rss={refuse[1]:.0f}MiB ({refuse[1] / BOUND_MIB:.2f}) {verdict}"
    )
    return 0 if verdict == "ok" else 1


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size


def _remove(path: Path) -> None:
    if path.is_dir():
        for member in path.iterdir():
            member.unlink()
        path.rmdir()
    else:
        path.unlink()


def _clever_people(rows: int) -> int:
    """Rows the check counts: accounts (students, teachers), enrolments, teachers' lines."""
    students = max(rows // 5, 1)
    sections = max(students * 5 // 30, 1)
    return students + sections + students * 5 + sections


if __name__ == "__main__":
    raise SystemExit(main())
