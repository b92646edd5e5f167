"""Shell completion of profile names and instance keys (`kprov --install-completion`).

A completion runs at every Tab press, so it reads local files only, quickly: the config
file's profile names, and the instance keys in the profile's instances.csv (read without
the state lock, as `instances list` does, never repaired). It never opens the network,
never asks for or reads a secret, and never fails: whatever cannot be read completes to
nothing. Candidates that are not printable text are left out (a key or a name must never
put a control character on the terminal).
"""

from __future__ import annotations

import os
from typing import Any

import typer


def complete_profile(ctx: typer.Context, incomplete: str) -> list[str]:
    """The profiles of the config file (--config, KPROV_CONFIG, the default one), and the
    built-in `sandbox`."""
    try:
        config = _config_file(ctx)
        names = {*config.profiles, "sandbox"}
    except Exception:
        return []
    return _matching(names, incomplete)


def complete_instance_key(ctx: typer.Context, incomplete: str) -> list[str]:
    """The instance keys kprov recorded for the profile the command line names."""
    try:
        from kprov.config import profile_name, state_dir_for
        from kprov.state.registry import REGISTRY_FILES, InstanceJournal

        config = _config_file(ctx)
        name = profile_name(_root_param(ctx, "profile_name"), os.environ, config)
        journal = InstanceJournal(state_dir_for(name, os.environ) / REGISTRY_FILES[0])
        keys = set(journal.load().by_key)
    except Exception:
        return []
    return _matching(keys, incomplete)


def _config_file(ctx: typer.Context) -> Any:
    from kprov.config import ConfigFile, config_path_from

    return ConfigFile(config_path_from(_root_param(ctx, "config"), os.environ))


def _root_param(ctx: typer.Context, name: str) -> Any:
    """A global option given before the command (`kprov --profile prod instances get <Tab>`)."""
    return ctx.find_root().params.get(name)


def _matching(candidates: set[str], incomplete: str) -> list[str]:
    return sorted(c for c in candidates if c.startswith(incomplete) and c.isprintable())
