"""The arrows between kprov's packages point one way (docs/development.md, "Layout"): a
reader never imports the core, the HTTP client never imports a reader, the sandbox shares no
code with the client. Read from the source (every import, lazy or for types only), so a
move that would turn an arrow round fails here, not in a reviewer's head."""

from __future__ import annotations

import ast
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


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
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
    wrong = []
    for path in sorted(tests_root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[-1].startswith("test_"):
                    wrong.append(f"{path.relative_to(tests_root.parent)} imports {name}")
    assert wrong == []
