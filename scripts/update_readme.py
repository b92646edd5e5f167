"""Regenerate the command reference in README.md from the commands' --help.

python scripts/update_readme.py          # rewrite README.md
python scripts/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from kprov.cli.reference import updated_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> int:
    path = README
    current = path.read_text(encoding="utf-8")
    fresh = updated_readme(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            print("README.md's command reference is out of date: run scripts/update_readme.py")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
