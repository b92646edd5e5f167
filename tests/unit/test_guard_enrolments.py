"""A bundle's enrolment file cut short (a half-written export) is held: its users file still
lists everyone, so the source's ids barely move, but most of its enrolments are gone, and
with `--grace` the removals would only wait silently (found by a newcomer with Microsoft's
own SDS sample, which nobody here wrote: tests/data/real/sds)."""

from __future__ import annotations

import shutil
from pathlib import Path

from kprov.provision.guards_judge import Thresholds, judge
from kprov.provision.guards_sources import Observation, SourceFingerprint, observe, stable_key
from kprov.rosters.manifest import read_manifest

SDS_V1 = Path(__file__).parents[1] / "data" / "real" / "sds" / "v1-100-users"


def night(bundle: Path, manifest: Path) -> Observation:
    manifest.write_text(f"defaults:\n  graph_id: g\nsds:\n  - path: {bundle}\n")
    read = read_manifest(manifest)
    found = observe(read.people, read.reading.sources, headers=read.reading.headers)
    return found[stable_key(str(bundle))]


def cut_enrolments(bundle: Path, keep: int) -> None:
    path = bundle / "StudentEnrollment.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: keep + 1]))  # the header and the first rows


def test_an_enrolment_file_cut_short_is_held_though_the_ids_barely_moved(tmp_path: Path) -> None:
    bundle = tmp_path / "sds"
    shutil.copytree(SDS_V1, bundle)
    before = night(bundle, tmp_path / "semester.yaml")
    assert before.fingerprint.enrolments >= 600  # every student row of every section

    cut_enrolments(bundle, 39)
    after = night(bundle, tmp_path / "semester.yaml")
    assert after.fingerprint.ids > before.fingerprint.ids * 0.5  # the id rule alone: not held
    verdict = judge(before.fingerprint, after, set(), Thresholds())
    assert verdict.held and verdict.short == "its enrolments shrank sharply"
    assert f"enrolments: {before.fingerprint.enrolments:,} then" in verdict.words

    assert not judge(before.fingerprint, before, set(), Thresholds()).held
    assert not judge(after.fingerprint, before, set(), Thresholds()).held  # growth is fine


def test_a_fingerprint_kept_by_an_earlier_build_is_not_judged_by_enrolments(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "sds"
    shutil.copytree(SDS_V1, bundle)
    before = night(bundle, tmp_path / "semester.yaml")
    stored = before.fingerprint.to_json()
    again = SourceFingerprint.from_json(stored, before.fingerprint.sample)
    assert again == before.fingerprint  # the count survives the ledger

    del stored["enrolments"]  # a ledger written before it was counted
    older = SourceFingerprint.from_json(stored, before.fingerprint.sample)
    cut_enrolments(bundle, 39)
    assert not judge(older, night(bundle, tmp_path / "semester.yaml"), set(), Thresholds()).held
