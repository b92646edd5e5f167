"""The built-in `sandbox` profile's server: recognising it on its port, and resetting it.

Whatever answers on the sandbox port is asked one harmless question first
(``GET /_sandbox/stats``); only an answer shaped like our sandbox's lets a command talk to it,
so another service that happens to hold the port is never sent a request, nor a secret.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kprov.config import ENV_MAPPING, ENV_STATE_DIR, Settings
from kprov.errors import ConfigError

SERVER_STATE_NAME = "sandbox-server.jsonl"
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class PortProbe:
    """What listens on the sandbox port: nothing, our sandbox, or something else."""

    listening: bool
    is_sandbox: bool
    answer: str = ""  # what the something else said, for the message


def probe_sandbox_port(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> PortProbe:
    """Ask whatever holds host:port for the sandbox's stats; never follows redirects."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/_sandbox/stats", headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(64 * 1024)
    except ConnectionRefusedError:
        return PortProbe(listening=False, is_sandbox=False)
    except (OSError, http.client.HTTPException) as exc:
        return PortProbe(True, False, f"no HTTP answer ({type(exc).__name__})")
    finally:
        connection.close()
    content_type = response.getheader("Content-Type") or "no content type"
    if response.status == 200 and content_type.startswith("application/json"):
        from kprov.api.answers import parse_json  # the one JSON reader of server answers

        try:
            data = parse_json(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and {"requests", "max_batch_seen"} <= data.keys():
            return PortProbe(listening=True, is_sandbox=True)
    return PortProbe(True, False, f"HTTP {response.status}, {content_type.split(';')[0]}")


def port_held_error(host: str, port: int, answer: str, *, has_state: bool = False) -> ConfigError:
    return ConfigError(
        f"{host}:{port}, the sandbox profile's port, is held by something that is not a kprov "
        f"sandbox (it answered: {answer}); nothing was sent to it.",
        hint=(
            f"Pick a free port for the sandbox profile: export KPROV_SANDBOX_PORT={port + 1} "
            "(or stop the service that holds it)." + moved_port_note(port, has_state)
        ),
    )


def moved_port_note(port: int, has_state: bool) -> str:
    """The sandbox's state names the URL it was made with: on another port it is refused."""
    if not has_state:
        return ""
    return (
        f" The sandbox state made on port {port} belongs to that port: run `kprov sandbox "
        "reset --yes` to start afresh on the new one."
    )


def reset_plan(settings: Settings, env: Mapping[str, str]) -> list[Path]:
    """What `kprov sandbox reset` would delete: the built-in profile's own state directory.

    Refused when that directory is not the sandbox's own (KPROV_STATE_DIR or KPROV_MAPPING
    set: they apply to every profile, so they may well name a real profile's mapping), and
    when a sandbox server is running (its state lives in that process).
    """
    if not settings.is_builtin_sandbox:
        raise ConfigError(
            f"profile 'sandbox' in {settings.config_path} is one of yours, not the built-in "
            "sandbox; `kprov sandbox reset` only clears the built-in one.",
            hint="Rename your profile, or clear its state yourself.",
        )
    for variable in (ENV_STATE_DIR, ENV_MAPPING):
        if env.get(variable):
            raise ConfigError(
                f"{variable} is set ({env[variable]}): it applies to every profile, so kprov "
                "will not delete what it names.",
                hint=f"Unset {variable} to reset the sandbox's own state, or delete the "
                "sandbox's files yourself.",
            )
    url = settings.profile.base_url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    probe = probe_sandbox_port(host, port)
    if probe.listening:
        what = "a kprov sandbox" if probe.is_sandbox else f"something else ({probe.answer})"
        raise ConfigError(
            f"{what} is listening on {host}:{port}; its state is its own.",
            hint="Stop it first (a `kprov sandbox serve`, or a kprov command still running).",
        )
    if not settings.state_dir.exists():
        return []
    return sorted(settings.state_dir.iterdir())


def reset_state(settings: Settings) -> int:
    """Delete the sandbox profile's state directory under its lock; returns files removed."""
    from kprov.state.lock import LOCK_NAME, StateLock

    state_dir = settings.state_dir
    if not state_dir.exists():
        return 0
    removed = 0
    with StateLock(state_dir, command="kprov sandbox reset"):
        for entry in state_dir.iterdir():
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    shutil.rmtree(state_dir, ignore_errors=True)
    return removed
