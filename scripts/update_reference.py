"""Regenerate the command reference in docs/reference.md from the commands' --help.

python3 scripts/update_reference.py          # rewrite docs/reference.md
python3 scripts/update_reference.py --check  # exit 1 if docs/reference.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from kprov.cli.reference import updated_reference

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def main() -> int:
    current = REFERENCE.read_text(encoding="utf-8")
    fresh = updated_reference(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            print("docs/reference.md is out of date: run python3 scripts/update_reference.py")
            return 1
        return 0
    REFERENCE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
