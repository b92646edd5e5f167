"""The README's command reference is generated from --help and must be current."""

from __future__ import annotations

from pathlib import Path

from kprov.cli.reference import updated_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_command_reference_is_current() -> None:
    current = README.read_text(encoding="utf-8")
    assert updated_readme(current) == current, "run: python scripts/update_readme.py"


def test_every_command_help_has_an_example() -> None:
    text = README.read_text(encoding="utf-8")
    reference = text.split("## Command reference", 1)[1]
    for section in reference.split("### ")[1:]:
        title = section.split("\n", 1)[0]
        if "Commands:" in section:  # a group: its commands carry the examples
            continue
        assert "Example" in section, f"{title} has no example in its --help"


def test_changelog_keeps_an_unreleased_section() -> None:
    changelog = (README.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and "keepachangelog.com" in changelog
