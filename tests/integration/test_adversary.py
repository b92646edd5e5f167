"""Adversary, round three (issues 18 and 21), against servers kprov did not write.

- A OneRoster SIS (``tests/independent_oneroster.py``): real OneRoster 1.1 and 1.2 exports
  shaped like real ones (tests/data/rosters/oneroster-quirks), its own page cap, OAuth 1.0a
  signatures checked by hand from RFC 5849, OAuth 2 tokens; then misbehaving.
- A hostile proxy (``tests/hostile_proxy.py``) in front of the Knewton sandbox, rewriting
  answers with JSON names given twice at any depth.

Each test runs the real CLI over loopback HTTP and asserts the end state of the servers and
the local files.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Sandbox, start_sandbox
from tests.helpers import run_cli
from tests.hostile_proxy import Exchange, HostileProxy
from tests.independent_oneroster import IndependentOneRoster, Options

SIS_SECRET = "sis-S3cr3t/'>&\"+="  # every character a signature base string encodes
EXPECTED = {  # the export's one active class; the tobedeleted one and its enrollments left out
    ("u-8001", "Earth Science", "instructor"),
    ("u-8004", "Earth Science", "learner"),  # a teacher, enrolled as student
    ("u-8005", "Earth Science", "learner"),
}


@pytest.fixture(autouse=True)
def sis_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVERSARY_SIS_SECRET", SIS_SECRET)


def source(tmp_path: Path, sis: IndependentOneRoster) -> Path:
    lines = [
        "oneroster_api:",
        f"  - url: {sis.url}",
        "    client_id: district-key",
        "    secret_env: ADVERSARY_SIS_SECRET",
        "    graph_id: gref-physics",
        "    page_size: 5",  # the server caps pages at 2: a short page is not the end
    ]
    if sis.version == "1.2":
        lines.append(f"    token_url: {sis.token_url}")
    path = tmp_path / "semester.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def sis(request: pytest.FixtureRequest) -> Iterator[IndependentOneRoster]:
    version, options = request.param
    server = IndependentOneRoster(version, "district-key", SIS_SECRET, options)
    yield server
    server.stop()


@pytest.mark.parametrize("sis", [("1.1", None), ("1.2", None)], indirect=True, ids=["1.1", "1.2"])
def test_real_exports_pulled_from_an_independent_sis_end_as_they_say_then_send_nothing(
    sandbox_env: Sandbox, tmp_path: Path, sis: IndependentOneRoster
) -> None:
    manifest = source(tmp_path, sis)
    first = run_cli("sync", str(manifest))
    assert first.exit_code == 0, first.output
    assert sandbox_env.enrolments() == EXPECTED
    writes = sandbox_env.write_requests()
    second = run_cli("sync", str(manifest))
    assert second.exit_code == 0, second.output
    assert sandbox_env.write_requests() == writes  # a night with nothing changed writes nothing
    assert all(status == 200 for _path, status in sis.seen)  # every signature / token accepted


MISBEHAVING = {
    "a page that fails": ("1.1", Options(fail="enrollments")),
    "no envelope": ("1.2", Options(no_envelope="classes")),
    "a total that lies upward": ("1.1", Options(total_lie=3)),
    "an empty first page, a total": ("1.2", Options(empty_first=True)),
    "a redirect elsewhere": ("1.1", Options(redirect="users")),
}


@pytest.mark.parametrize("sis", list(MISBEHAVING.values()), indirect=True, ids=list(MISBEHAVING))
def test_an_independent_sis_that_misbehaves_gets_nothing_sent_from_it(
    sandbox_env: Sandbox, tmp_path: Path, sis: IndependentOneRoster
) -> None:
    result = run_cli("sync", str(source(tmp_path, sis)))
    assert result.exit_code == 4, result.output
    assert "Nothing was sent from this source" in result.stderr
    assert sandbox_env.write_requests() == 0
    assert sis.elsewhere == []  # a redirect's credentials never followed it to another host


@pytest.mark.parametrize(
    "sis",
    [
        ("1.1", Options(refuse=True, echo_secret=True)),
        ("1.2", Options(refuse=True, echo_secret=True)),
    ],
    indirect=True,
    ids=["1.1", "1.2"],
)
def test_a_sis_quoting_its_secret_every_way_in_its_refusal_never_gets_it_printed(
    sandbox_env: Sandbox, tmp_path: Path, sis: IndependentOneRoster
) -> None:
    log = tmp_path / "run.log"
    result = run_cli("--debug", "sync", str(source(tmp_path, sis)), "--log-file", str(log))
    assert result.exit_code == 3, result.output
    shown = result.stdout + result.stderr + log.read_text()
    raw = SIS_SECRET.encode()
    for form in (SIS_SECRET, SIS_SECRET[6:], quote(SIS_SECRET, safe="").lower(), raw.hex(),
                 base64.b64encode(raw).decode().rstrip("=")):  # fmt: skip
        assert form not in shown, form


# ------------------------------------------------------------------ the Knewton side


def _twice_somewhere(exchange: Exchange) -> None:
    """Half the JSON answers: one object, at any depth, names one of its keys a second time
    (another value, or the same one; spelled plainly or in \\u escapes; first or last)."""
    if exchange.rng.random() < 0.5:
        return
    try:
        body = json.loads(exchange.body)
    except ValueError:
        return
    objects: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            objects.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    objects = [o for o in objects if o]
    if not objects:
        return
    rng: random.Random = exchange.rng
    target = rng.choice(objects)
    key = rng.choice(list(target))
    value = target[key] if rng.random() < 0.3 else str(uuid.uuid4())
    name = json.dumps(key) if rng.random() < 0.5 else '"' + "".join(
        f"\\u{ord(c):04x}" for c in key) + '"'  # fmt: skip
    extra = f"{name}: {json.dumps(value)}"
    first = rng.random() < 0.5

    def dump(value: Any) -> str:
        if isinstance(value, dict):
            parts = [f"{json.dumps(k)}: {dump(v)}" for k, v in value.items()]
            if value is target:
                parts.insert(0 if first else len(parts), extra)
            return "{" + ", ".join(parts) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(dump(v) for v in value) + "]"
        return json.dumps(value)

    exchange.body = dump(body).encode()


@pytest.mark.parametrize("seed", [1, 2])
def test_names_given_twice_at_any_depth_leave_only_ids_the_server_has(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    from tests.end_state import recorded_ids, server_ids
    from tests.semesters import ONE_CLASS_MANIFEST

    box = start_sandbox()
    proxy = HostileProxy(box.base_url.rsplit("/v0", 1)[0], after=_twice_somewhere, seed=seed)
    try:
        for key, value in box.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KPROV_BASE_URL", proxy.url + "/v0")
        manifest = tmp_path / "semester.yaml"
        manifest.write_text(ONE_CLASS_MANIFEST, encoding="utf-8")
        first = run_cli("sync", str(manifest))
        assert first.exit_code in (0, 1), first.output
        assert recorded_ids(state_dir) <= server_ids(box)
        proxy.after = None  # an honest wire from now on
        again = run_cli("sync", str(manifest))
        assert again.exit_code == 0, again.output
        assert recorded_ids(state_dir) <= server_ids(box)
        assert {e for e, _i, _t in box.enrolments()} == {"t-1", "s-1", "s-2", "s-3"}
    finally:
        proxy.stop()
        box.server.stop()
