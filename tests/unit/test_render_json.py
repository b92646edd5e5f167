"""--json documents: what json.dumps(indent=2) would say, written by the C encoder, with at
most JSON_ITEMS_CAP items (the rest are counted, never built)."""

from __future__ import annotations

import io
import json

import pytest

from kprov.cli import render_json as render
from kprov.errors import ExitCode
from kprov.provision.plan import Action, Item, Plan
from kprov.rosters.model import Origin


def test_a_document_reads_as_json_dumps_wrote_it() -> None:
    document = {
        "ok": True,
        "counts": {"created": 2, "failed": 0},
        "empty": {},
        "none": [],
        "warnings": ["a\u202eb", "plain"],
        "items": [{"external_user_id": "s\x1b[31m", "line": 3, "x": None, "n": 1.5}],
        "error": object(),  # default=str, as before
    }
    out = io.StringIO()
    render.emit_json(document, out)
    text = out.getvalue()
    assert text.isascii() and text.endswith("}\n")
    expected = json.loads(json.dumps(render.printable_data(document), default=str))
    assert json.loads(text) == expected
    assert '\n  "counts": {\n    "created": 2,' in text  # objects indented
    assert '\n    {"external_user_id": ' in text  # each list element on a line of its own


def test_only_the_first_items_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "JSON_ITEMS_CAP", 3)
    items = tuple(
        Item(Action.CREATE_ACCOUNT, external_id=f"s{i}", origin=Origin("r.csv", i + 2))
        for i in range(10)
    )
    document = render.plan_document(Plan(command="accounts import", items=items), "r", ExitCode.OK)
    assert [i["external_user_id"] for i in document["items"]] == ["s0", "s1", "s2"]
    assert (document["items_total"], document["items_truncated"]) == (10, True)
