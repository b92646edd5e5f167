"""Regenerate the command reference (docs/reference.md) and the manual pages (man/*.1) from
the commands' --help.

python3 scripts/update_reference.py          # rewrite docs/reference.md and man/
python3 scripts/update_reference.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from kprov.cli.manpage import man_pages
from kprov.cli.reference import updated_reference

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
MAN = ROOT / "man"


def main() -> int:
    current = REFERENCE.read_text(encoding="utf-8")
    fresh = updated_reference(current)
    pages = man_pages()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in MAN.glob("*.1")}
    if "--check" in sys.argv[1:]:
        stale = []
        if fresh != current:
            stale.append("docs/reference.md")
        if on_disk != pages:
            stale.append("man/")
        if stale:
            print(f"{' and '.join(stale)} out of date: run python3 scripts/update_reference.py")
            return 1
        return 0
    REFERENCE.write_text(fresh, encoding="utf-8")
    MAN.mkdir(exist_ok=True)
    for name in set(on_disk) - set(pages):
        (MAN / name).unlink()
    for name, text in pages.items():
        (MAN / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
