"""The command reference (docs/reference.md) is generated from --help and must be current."""

from __future__ import annotations

from pathlib import Path

from kprov.cli.reference import updated_reference

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"


def test_command_reference_is_current() -> None:
    current = REFERENCE.read_text(encoding="utf-8")
    assert updated_reference(current) == current, "run: python3 scripts/update_reference.py"


def test_manual_pages_are_current() -> None:
    """man/*.1 are generated from the same help: one page per command, none left over."""
    from kprov.cli.manpage import man_pages

    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "man").glob("*.1")}
    assert on_disk == man_pages(), "run: python3 scripts/update_reference.py"


def test_every_manual_page_leads_to_its_neighbours() -> None:
    """`man kprov` alone leads everywhere: each page's SEE ALSO names the pages above it and
    one per command under it, and every page it names exists."""
    import re

    from kprov.cli.manpage import man_pages

    pages = man_pages()
    names = {name.removesuffix(".1") for name in pages}
    for name, text in pages.items():
        see = text.split(".SH SEE ALSO\n", 1)[1].replace("\\-", "-")
        named = set(re.findall(r"(kprov[\w-]*)\(1\)", see))
        assert named <= names, name
        page = name.removesuffix(".1")
        above = {n for n in names if page.startswith(n + "-")}  # command names hold "-" too
        under = {n for n in names if n.startswith(page + "-")}
        below = {n for n in under if not any(n.startswith(m + "-") for m in under)}
        assert named == above | below, name
    assert "kprov-sync(1)" in pages["kprov.1"].replace("\\-", "-")


def test_every_command_help_has_an_example() -> None:
    reference = REFERENCE.read_text(encoding="utf-8")
    for section in reference.split("### ")[1:]:
        title = section.split("\n", 1)[0]
        if "Commands:" in section:  # a group: its commands carry the examples
            continue
        assert "Example" in section, f"{title} has no example in its --help"


def test_changelog_keeps_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and "keepachangelog.com" in changelog


def _documented_keys(section: str) -> set[str]:
    """The keys of the table under `<!-- manifest-keys: SECTION -->` in docs/manifest.md."""
    import re

    text = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    table = text.split(f"<!-- manifest-keys: {section} -->", 1)[1].split("\n\n", 1)[0]
    keys: set[str] = set()
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        keys |= set(re.findall(r"`([a-z_]+)`", first))
    return keys


def test_the_manifest_reference_names_every_key_the_manifest_accepts() -> None:
    """docs/manifest.md lists exactly the keys each part of a manifest accepts: a key added to
    the reader without a line in the reference (or the reverse) fails here."""
    from kprov.rosters import manifest_load as manifest
    from kprov.rosters.manifest_api import KEYS as API_KEYS
    from kprov.rosters.manifest_entries import ROSTER_KEYS

    accepted = {
        "top": manifest.TOP_KEYS,
        "defaults": manifest.DEFAULT_KEYS,
        "instance": manifest.INSTANCE_KEYS,
        "people": manifest.PEOPLE_KEYS,
        "rosters": ROSTER_KEYS,
        "bundle": manifest.BUNDLE_KEYS,
        "oneroster_api": API_KEYS,
    }
    for section, keys in accepted.items():
        assert _documented_keys(section) == set(keys), f"docs/manifest.md, {section}"


def test_every_file_and_function_the_architecture_page_names_exists() -> None:
    """docs/architecture.md's "where each behaviour lives" must not send anyone to a file a
    move has emptied: every `path.py` it names exists (a bare name: in some package), and
    every `path.py: function` defines that function; a name that two packages hold
    (`wire.py`) is given with its package."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    sources = {p.relative_to(ROOT).as_posix(): p for p in (ROOT / "kprov").rglob("*.py")}
    wrong = []
    for name, function in re.findall(r"`([\w/]+\.py)(?:: (\w+))?`", text):
        if name.startswith(("tests/", "scripts/")):
            found = [ROOT / name] if (ROOT / name).exists() else []
        elif "/" in name:
            found = [p for rel, p in sources.items() if rel.endswith(name)]
        else:
            found = [p for rel, p in sources.items() if rel.split("/")[-1] == name]
        if not found:
            wrong.append(name)
        elif len(found) > 1:
            wrong.append(f"{name}: in {len(found)} packages, give it with its package")
        elif function and not any(f"def {function}(" in p.read_text() for p in found):
            wrong.append(f"{name}: {function}")
    assert wrong == []
