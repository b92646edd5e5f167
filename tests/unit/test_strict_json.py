"""The one strict JSON reader refuses what two readers could read differently."""

from __future__ import annotations

import pytest

from kprov import strict_json
from kprov.api.answers import parse_json
from kprov.strict_json import DuplicateName


@pytest.mark.parametrize(
    "raw", [b'{"id": 1, "id": 2}', b'{"a": NaN}', b"[Infinity]", b"[-Infinity]", b"\xff{}"]
)
def test_what_two_readers_could_disagree_on_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        strict_json.loads(raw)
    with pytest.raises(ValueError):  # the server answers' reader is the same one
        parse_json(raw)


def test_a_repeated_name_is_named_and_deep_nesting_is_a_value_error() -> None:
    with pytest.raises(DuplicateName) as caught:
        strict_json.loads('{"a": {"id": 1, "id": 1}}')
    assert caught.value.name == "id"
    with pytest.raises(ValueError, match="nested too deeply"):
        strict_json.loads("[" * 100_000 + "]" * 100_000)


def test_a_repeated_names_text_is_never_in_the_message() -> None:
    """The name is server text (a secret echoed as a key): only ``name`` holds it, for the
    caller to scrub; a handler printing any ValueError shows none of it."""
    with pytest.raises(DuplicateName) as caught:
        strict_json.loads('{"sk-live-0123": 1, "sk-live-0123": 2}')
    assert caught.value.name == "sk-live-0123"
    assert "sk-live" not in str(caught.value) and "sk-live" not in repr(caught.value)


def test_ordinary_json_reads_as_json() -> None:
    assert strict_json.loads(b'{"a": [1, 2.5, "x", null, true]}') == {
        "a": [1, 2.5, "x", None, True]
    }


@pytest.mark.parametrize("raw", [b'{"expires_in": 1e999}', b"[-1E400]", b"[0.5e309]"])
def test_a_number_too_large_for_a_float_is_refused_as_infinity_is(raw: bytes) -> None:
    with pytest.raises(ValueError, match="too large"):  # read as inf otherwise
        strict_json.loads(raw)
    assert strict_json.loads(b"[1e308, 1e-999]") == [1e308, 0.0]


def test_a_leading_byte_order_mark_is_ignored_as_rfc_8259_allows() -> None:
    assert strict_json.loads(b'\xef\xbb\xbf{"id": "a"}') == {"id": "a"}  # a .NET server's
    assert strict_json.loads('\ufeff{"id": "a"}') == {"id": "a"}
    with pytest.raises(ValueError):
        strict_json.loads(b'{"id": "a"}\xef\xbb\xbf')  # anywhere else it is garbage
