"""Sync manifests written for a test, and what reading one gives: its problems (an exit-2
InputError) or its members. Shared by the manifest and the several-sources tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters.manifest import Manifest, read_manifest


def manifest(tmp_path: Path, text: str) -> Path:
    """``semester.yaml`` in *tmp_path*: one year's defaults, then *text*."""
    path = tmp_path / "semester.yaml"
    path.write_text(
        "defaults: {graph_id: gref-g, start_date: 2026-09-01, end_date: 2027-06-30}\n" + text
    )
    return path


def problems_of(path: Path) -> list[str]:
    """The problems reading *path* reports (it must refuse it, exit 2)."""
    with pytest.raises(InputError) as caught:
        read_manifest(path)
    assert caught.value.exit_code == 2
    return caught.value.problems


def members(read: Manifest) -> set[tuple[str, str | None, str]]:
    """(external id, instance key, role) of everyone a read manifest names."""
    return {(p.external_id, p.instance_key, p.role) for p in read.people}
