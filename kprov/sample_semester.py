"""The sample semester shipped inside the package, so "Try it" works without a checkout.

The files live in ``kprov/samples/`` (the repository's ``sample_rosters`` is a link to it:
one copy). The manifest names its rosters by paths relative to itself, so the written
directory can live anywhere.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from kprov.errors import InputError, StorageError

MANIFEST = "semester.yaml"


def sample_files() -> dict[str, Traversable]:
    """Relative path -> packaged file, for every file of the sample semester."""
    found: dict[str, Traversable] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    walk(child, name + "/")
            elif not child.name.endswith((".py", ".pyc")):
                found[name] = child

    walk(files("kprov") / "samples", "")
    return dict(sorted(found.items()))


def write_sample_semester(destination: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the sample semester into *destination*; refuse to overwrite unless told."""
    samples = sample_files()
    targets = {destination / name: source for name, source in samples.items()}
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise InputError(
            f"{destination} already holds sample files; nothing was written",
            problems=existing,
            hint="Choose another directory, or pass --force to overwrite them.",
        )
    try:
        for path, source in targets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.read_bytes())
    except OSError as exc:
        raise StorageError(
            f"cannot write the sample semester into {destination}: {exc.strerror}",
            hint="Choose a directory you can write to.",
        ) from None
    return list(targets)
