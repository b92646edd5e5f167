"""The header of an export, for its fingerprint (docs/holds.md): the first line of a roster
file, or of each CSV member of a bundle. Read apart from the rosters (a few hundred bytes
a file); never an error: a header that cannot be read is "" (the readers say why)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

FIRST_LINE = 2048  # bytes read for one header
MAX_HEADER = 4000  # characters kept for a whole bundle


def first_line(raw: bytes) -> str:
    line = raw.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8-sig", "replace").strip()


def file_header(path: Path) -> str:
    """A roster file's first line; a bundle's members' first lines."""
    try:
        if path.is_dir():
            members = {}
            for member in sorted(path.iterdir()):
                if member.is_file() and member.suffix.lower() in (".csv", ".txt", ".tsv"):
                    with member.open("rb") as handle:
                        members[member.name] = handle.read(FIRST_LINE)
            return member_headers(members)
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as bundle:
                found: dict[str, bytes] = {}
                for info in bundle.infolist()[:200]:
                    name = info.filename
                    if info.is_dir() or not name.lower().endswith((".csv", ".txt", ".tsv")):
                        continue
                    with bundle.open(info) as stream:
                        found[name] = stream.read(FIRST_LINE)
            return member_headers(found)
        if not path.is_file():  # standard input, a FIFO: never opened twice
            return ""
        with path.open("rb") as handle:
            return first_line(handle.read(FIRST_LINE))
    except (OSError, ValueError, zipfile.BadZipFile, RuntimeError):
        return ""


def member_headers(members: Mapping[str, bytes]) -> str:
    """ "users.csv: sourcedId,...; enrollments.csv: ..." (sorted by member name)."""
    text = "; ".join(
        f"{name}: {first_line(raw[:FIRST_LINE])}"
        for name, raw in sorted(members.items())
        if name.lower() != "manifest.csv"
    )
    return text[:MAX_HEADER]
