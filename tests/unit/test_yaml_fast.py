"""A sound YAML document is composed by libyaml: the same nodes, tags and marks as PyYAML's
own composer; anything it would refuse or report goes through BoundedLoader, as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kprov.yaml_bounds import MAX_YAML_DEPTH, BoundedLoader, _compose_fast, compose_checked

DATA = Path(__file__).resolve().parents[1] / "data"

SOUND = [
    "defaults:\n  graph_id: gref-1\ninstances:\n  - key: alg-1\n    name: 'Algebra: 1'\n"
    '    people:\n      - instructors: [t-1, "007"]\n      - roster: alg.csv\n'
    "        delimiter: ';'\n",
    "- external_user_id: 00123\n  role: learner\n  when: 2026-09-01\n  n: 1.5e3\n  ok: yes\n"
    "- {external_user_id: s-2, role: ~}\n",
    "a: &anchor [1, 2]\nb: |\n  block\n  text\nc: >-\n  folded\n  text\nd: !!str 12\n",
    "",
    "# only a comment\n",
]
UNSOUND = [
    "a: 1\na: 2\n",  # a key given twice
    "base: &b {x: 1}\nother:\n  <<: *b\n",  # a merge key (and an alias)
    "a: &x 1\nb: *x\n",  # an alias
    "a: [1, 2\n",  # a syntax error
    "- " * (MAX_YAML_DEPTH + 1) + "x\n",  # too deep
]


def _same(fast: yaml.Node, slow: yaml.Node) -> None:
    assert type(fast) is type(slow) and fast.tag == slow.tag
    for mark in ("start_mark", "end_mark"):
        a, b = getattr(fast, mark), getattr(slow, mark)
        assert (a.line, a.column) == (b.line, b.column)
    if isinstance(slow, yaml.ScalarNode):
        assert isinstance(fast, yaml.ScalarNode)
        assert fast.value == slow.value and (fast.style or None) == (slow.style or None)
        return
    assert len(fast.value) == len(slow.value)
    for one, other in zip(fast.value, slow.value, strict=True):
        if isinstance(slow, yaml.MappingNode):
            _same(one[0], other[0])
            _same(one[1], other[1])
        else:
            _same(one, other)


def _slow(text: str) -> yaml.Node | None:
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", SOUND + [p.read_text() for p in sorted(DATA.rglob("*.yaml"))
                                          if "latin1" not in p.name])  # fmt: skip
def test_libyaml_composes_what_pyyaml_composes(text: str) -> None:
    fast = _compose_fast(text)
    if fast is not None and not isinstance(fast, yaml.Node):
        return  # unsound: composed by BoundedLoader, as before
    slow = _slow(text)  # a sound document is one PyYAML composes too
    if fast is None:
        assert slow is None
    else:
        assert slow is not None
        _same(fast, slow)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
@pytest.mark.parametrize("text", UNSOUND)
def test_what_would_be_refused_is_composed_as_before(text: str) -> None:
    assert not isinstance(_compose_fast(text), yaml.Node)
    if text.startswith("a: 1"):
        _root, refused = compose_checked(text, BoundedLoader)
        assert [(r.key, r.line, r.first_line) for r in refused] == [("a", 2, 1)]
