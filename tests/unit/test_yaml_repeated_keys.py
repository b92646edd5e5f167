"""Every YAML input refuses a key given twice (YAML's silent last-wins) and merge keys.

A manifest class with `people:` twice lost its first roster, and `sync --prune` then removed
those people; `instances:` twice dropped a block of classes; a profile with `base_url:` twice
would send credentials to whichever came last.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.config import ConfigFile
from kprov.errors import ConfigError, ExitCode, InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.manifest import read_manifest

LAST_WINS = "YAML would silently keep only the last; keep one"
MERGE = "YAML merge keys (<<) are not allowed in kprov inputs"


def manifest_problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "a.csv").write_text("external_user_id\ns-1\ns-2\n")
    (tmp_path / "b.csv").write_text("external_user_id\ns-3\n")
    path = tmp_path / "semester.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        read_manifest(path)
    assert caught.value.exit_code == ExitCode.INPUT
    return [p.replace(f"{path}:", "") for p in caught.value.problems]


def test_a_class_with_people_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    found = manifest_problems(
        tmp_path,
        "defaults: {graph_id: g}\n"
        "instances:\n"
        "  - key: alg\n"
        "    name: Algebra\n"
        "    people:\n"
        "      - roster: a.csv\n"
        "    people:\n"
        "      - roster: b.csv\n",
    )
    assert found == [f"7:5: 'people' is given twice (first at line 5): {LAST_WINS}"]


def test_instances_twice_at_the_top_and_defaults_keys_twice_are_each_refused(
    tmp_path: Path,
) -> None:
    found = manifest_problems(
        tmp_path,
        "defaults:\n  graph_id: g\n  graph_id: h\n"
        "instances:\n  - {key: a, name: A, people: [{roster: a.csv}]}\n"
        "instances:\n  - {key: b, name: B, people: [{roster: b.csv}]}\n",
    )
    assert found == [
        f"3:3: 'graph_id' is given twice (first at line 2): {LAST_WINS}",
        f"6:1: 'instances' is given twice (first at line 4): {LAST_WINS}",
    ]


def test_repeats_deep_inside_and_in_flow_style_are_refused(tmp_path: Path) -> None:
    found = manifest_problems(
        tmp_path,
        "defaults: {graph_id: g}\n"
        "instances:\n"
        "  - {key: a, name: A, key: b, people: [{roster: a.csv, role: learner, role: teacher}]}\n",
    )
    assert found == [
        f"3:23: 'key' is given twice (first at line 3): {LAST_WINS}",
        f"3:71: 'role' is given twice (first at line 3): {LAST_WINS}",
    ]


def test_quoted_and_plain_spellings_of_one_key_are_the_same_key(tmp_path: Path) -> None:
    found = manifest_problems(
        tmp_path,
        "defaults: {graph_id: g}\ninstances:\n  - key: a\n    name: A\n    'name': B\n",
    )
    assert found == [f"5:5: 'name' is given twice (first at line 4): {LAST_WINS}"]


def test_merge_keys_are_refused_in_a_manifest(tmp_path: Path) -> None:
    found = manifest_problems(
        tmp_path,
        "defaults: {graph_id: g}\ninstances:\n  - <<: {key: a, name: A}\n    key: b\n",
    )
    assert found[0] == f"3:5: {MERGE}: they override keys silently; write the values out"


def test_a_roster_with_users_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("users: [s-1]\nusers: [s-2]\n")
    with pytest.raises(InputError) as caught:
        load_roster([path], RosterOptions())
    assert caught.value.problems == [
        f"{path}:2:1: 'users' is given twice (first at line 1): {LAST_WINS}"
    ]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        (
            "profiles:\n  p:\n    base_url: https://api.example.org/v0\n    api_key: k\n"
            "    base_url: https://evil.example.net/v0\n",
            ":5:5:",
            "'base_url' is given twice (first at line 3)",
        ),
        (
            "profiles:\n  p: {base_url: 'https://a.example.org/v0', api_key: k}\n"
            "profiles:\n  q: {base_url: 'https://b.example.org/v0', api_key: k}\n",
            ":3:1:",
            "'profiles' is given twice (first at line 1)",
        ),
        (
            "base: &b {base_url: 'https://a.example.org/v0', api_key: k}\n"
            "profiles:\n  p:\n    <<: *b\n    api_key: other\n",
            ":4:5:",
            MERGE,
        ),
    ],
)
def test_the_config_file_refuses_repeated_and_merge_keys_with_exit_3(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        ConfigFile(path)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert f"cannot read config file {path}{where} {what}" in str(caught.value)
    assert "invalid YAML" not in str(caught.value)
