"""YAML inputs that must be refused precisely: absurd nesting (rosters, manifests, the config
file, all loaded through one bounded loader) and user mappings whose keys would change meaning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.config import ConfigFile
from kprov.errors import ConfigError, ExitCode, InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.manifest import read_manifest
from kprov.yaml_bounds import MAX_YAML_DEPTH

USER_KEYS = "the keys are: external_user_id (or id), role, instance"
LAST_WINS = "YAML would silently keep only the last; keep one"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([path], RosterOptions())
    assert caught.value.exit_code == ExitCode.INPUT
    return caught.value.problems


def flow(depth: int) -> str:
    return "[" * depth + "]" * depth


def block(depth: int) -> str:
    """*depth* mappings nested by indentation, one per line."""
    return "".join(f"{'  ' * n}k{n}:\n" for n in range(depth)) + f"{'  ' * depth}leaf\n"


# ---------------------------------------------------------------------------- nesting


@pytest.mark.parametrize("depth", [MAX_YAML_DEPTH - 1, 500])
def test_a_deeply_nested_roster_is_refused_with_its_line_and_column(
    tmp_path: Path, depth: int
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(f"users:\n  - {flow(depth)}\n")
    [problem] = problems_of(path)
    # users (1) -> the list (2) -> the user (3) -> ...: the refused bracket is at column
    # 5 + (MAX_YAML_DEPTH - 2)
    assert problem.startswith(f"{path}:2:{5 + MAX_YAML_DEPTH - 2}: nested deeper than 64 levels")
    assert "unclosed '['" in problem


def test_deep_block_nesting_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("users:\n  - " + block(600).replace("\n", "\n    ", 599))
    [problem] = problems_of(path)
    assert "nested deeper than 64 levels" in problem and problem.startswith(f"{path}:")


def test_nesting_within_the_bound_is_an_ordinary_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(f"users:\n  - {flow(MAX_YAML_DEPTH - 2)}\n")  # users, list, 62 lists
    assert problems_of(path) == [f"{path}:2:5: a user must be an id or a mapping"]


@pytest.mark.parametrize("text", [f"a: {flow(500)}\n", block(1000)])
def test_a_deeply_nested_manifest_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "semester.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_manifest(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:") and "nested deeper than 64 levels" in problem


@pytest.mark.parametrize("text", [f"profiles: {flow(500)}\n", block(1000)])
def test_a_deeply_nested_config_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        ConfigFile(path)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.message.startswith(f"cannot read config file {path}:")
    assert "nested deeper than 64 levels" in caught.value.message
    assert "KPROV_CONFIG" in str(caught.value.hint)


def test_a_config_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("current_profile: a\nprofiles: {a: [}\n")
    with pytest.raises(ConfigError) as caught:
        ConfigFile(path)
    assert caught.value.message.startswith(f"cannot read config file {path}:2:16: invalid YAML")


# ---------------------------------------------------------------------- user mappings


def test_an_unknown_key_in_a_user_is_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "users: [{external_user_id: s-y1, roll: instructor},\n"
        "        {external_user_id: s-y4, rolee: teacher}]\n"
    )
    assert problems_of(path) == [
        f"{path}:1:34: unknown key 'roll' in a user; {USER_KEYS}",
        f"{path}:2:34: unknown key 'rolee' in a user; {USER_KEYS}",
    ]


def test_an_id_that_is_a_list_is_not_called_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "users:\n"
        "  - external_user_id: [a, b]\n"
        "  - {id: {x: 1}}\n"
        "  - {external_user_id: s-3, role: [teacher]}\n"
        "  - {external_user_id: s-4, instance: [k1, k2]}\n"
    )
    assert problems_of(path) == [
        f"{path}:2:23: external_user_id must be a text (one id), not a list",
        f"{path}:3:10: id must be a text (one id), not a mapping",
        f"{path}:4:35: role must be a text (one role), not a list",
        f"{path}:5:39: instance must be a text (one instance key), not a list",
    ]


def test_repeated_keys_and_both_id_spellings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "users:\n"
        "  - {external_user_id: s-1, role: teacher, role: learner}\n"
        "  - {id: s-2, external_user_id: s-3}\n"
        "  - {? [a, b] : c, id: s-4}\n"
    )
    assert problems_of(path) == [
        f"{path}:2:44: 'role' is given twice (first at line 2): {LAST_WINS}",
        f"{path}:3:5: user has both external_user_id and id; keep one",
        f"{path}:4:8: a list is not a key in a user; {USER_KEYS}",
    ]


def test_a_roster_mapping_holds_users_only(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("users: [s-1]\nuser: [s-2]\nusers: [s-3]\n")
    assert problems_of(path) == [
        f"{path}:2:1: unknown key 'user' in a roster; it holds one `users:` list only",
        f"{path}:3:1: 'users' is given twice (first at line 1): {LAST_WINS}",
    ]


def test_every_accepted_spelling_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "users:\n"
        "  - {external_user_id: t-1, role: instructor, instance: k}\n"
        "  - {id: s-2, role: }\n"
        "  - s-3\n"
        "  - {external_user_id: '00123', instance: }\n"
    )
    people = load_roster([path]).people
    assert [(p.external_id, p.role, p.instance_key, p.origin.line) for p in people] == [
        ("t-1", "instructor", "k", 2),
        ("s-2", "learner", None, 3),
        ("s-3", "learner", None, 4),
        ("00123", "learner", None, 5),
    ]
