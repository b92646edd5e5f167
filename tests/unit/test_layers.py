"""The arrows between kprov's packages point one way (docs/architecture.md): a
reader never imports the core, the HTTP client never imports a reader, the sandbox shares no
code with the client. Read from the source (every import, lazy or for types only), so a
move that would turn an arrow round fails here, not in a reviewer's head."""

from __future__ import annotations

import re
from pathlib import Path

import kprov

PACKAGES = {"api", "cli", "provision", "rosters", "sandbox", "sis", "state"}
# package -> the packages it must never import (top-level modules such as errors.py and
# api_facts.py are plain shared ground)
FORBIDDEN = {
    "api": {"cli", "provision", "rosters", "sandbox", "sis", "state"},
    "rosters": {"cli", "provision", "sandbox", "sis", "state"},
    "state": {"api", "cli", "provision", "rosters", "sandbox", "sis"},
    "sis": {"cli", "provision", "sandbox"},
    "provision": {"cli", "sandbox", "sis"},
    "sandbox": PACKAGES - {"sandbox"},
}


# Every import statement, lazy ones inside functions included, read as text: parsing the
# whole tree with ast took ~1.5 s a test. `from X import (A, B)` may span lines.
FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*)", re.M)


def imported_modules(path: Path) -> set[str]:
    """The absolute module names *path* imports (``from X import Y``: X and X.Y)."""
    text = path.read_text(encoding="utf-8")
    found = set()
    for module, names in FROM_IMPORT.findall(text):
        found.add(module)
        for name in re.findall(r"\w+", names.split("#")[0] if "(" not in names else names):
            found.add(f"{module}.{name}")
    for names in PLAIN_IMPORT.findall(text):
        found.update(name.split()[0] for name in names.split("#")[0].split(",") if name.strip())
    return found


def imported_packages(path: Path) -> set[str]:
    found = set()
    for name in imported_modules(path):
        parts = name.split(".")
        if parts[0] == "kprov" and len(parts) > 1:
            found.add(parts[1])
    return found & PACKAGES


def test_no_package_imports_a_package_its_arrow_points_away_from() -> None:
    root = Path(kprov.__file__).parent
    wrong = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for target in sorted(imported_packages(path) & forbidden):
                wrong.append(f"{path.relative_to(root.parent)} imports kprov.{target}")
    assert wrong == []


def test_no_test_module_imports_another_test_module() -> None:
    """Shared fixtures and helpers live in support modules (tests/*.py not named test_*):
    importing a test module runs its tests' module code twice and hides what is shared."""
    tests_root = Path(__file__).parents[1]
    wrong = [
        f"{path.relative_to(tests_root.parent)} imports {name}"
        for path in sorted(tests_root.rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name.split(".")[-1].startswith("test_")
    ]
    assert wrong == []
