"""The wheel a user installs carries what "Try it" needs: the samples, py.typed, the license,
and the manual pages.

Built the way pipx and `python -m build` build it (an isolated PEP 517 build), with the
oldest setuptools pyproject.toml allows (the newest is what `pip install -e .` uses in CI),
from a copy of the tree, so nothing is written into the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kprov.sample_semester import sample_files

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_ships_samples_typing_marker_license_and_spdx_metadata(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(REPO / "kprov", source / "kprov", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "man", source / "man")
    floor = re.search(r'"setuptools>=([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert floor is not None
    constraint = tmp_path / "constraint.txt"
    constraint.write_text(f"setuptools=={floor.group(1)}.*\n")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        env={**os.environ, "PIP_CONSTRAINT": str(constraint)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("kprov-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = archive.read(metadata).decode()
    assert {f"kprov/samples/{name}" for name in sample_files()} <= names
    assert "kprov/py.typed" in names
    pages = {n.rsplit("/", 1)[1] for n in names if "/data/share/man/man1/" in n}
    assert {"kprov.1", "kprov-sync.1"} <= pages  # pipx links them: `man kprov`
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta and "License-File: LICENSE" in meta
    assert "Classifier: Typing :: Typed" in meta and "Requires-Python: >=3.11" in meta
    assert not any("License ::" in line for line in meta.splitlines())  # SPDX, not classifiers
