"""Building the API client for a command from its settings: the one place that joins them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from kprov.config import Settings, quotas_for
from kprov.credentials import Secret, Source, find_api_secret, refused_secret_hint
from kprov.errors import ConfigError

if TYPE_CHECKING:
    from kprov.api.client import KnewtonClient
    from kprov.api.pacing import RetryPolicy
    from kprov.api.transport import Limits


def new_run_id() -> str:
    """Short id sent as ``request-label`` on every call, so support can find a run's requests."""
    return "kprov-" + secrets.token_hex(6)


def retry_policy_from_env(env: Mapping[str, str]) -> RetryPolicy:
    """Retry tuning for unusual networks (and fast tests): KPROV_RETRY_BASE_DELAY (seconds,
    default 0.5) and KPROV_RETRY_MAX_ATTEMPTS (default 6)."""
    from kprov.api.pacing import RetryPolicy

    try:
        base = float(env.get("KPROV_RETRY_BASE_DELAY", "0.5"))
        attempts = int(env.get("KPROV_RETRY_MAX_ATTEMPTS", "6"))
    except ValueError:
        raise ConfigError(
            "KPROV_RETRY_BASE_DELAY must be a number and KPROV_RETRY_MAX_ATTEMPTS a whole number"
        ) from None
    if base < 0 or attempts < 1:
        raise ConfigError("KPROV_RETRY_BASE_DELAY must be >= 0 and KPROV_RETRY_MAX_ATTEMPTS >= 1")
    return RetryPolicy(max_attempts=attempts, base_delay=base, max_delay=max(base, 30.0))


@dataclass(frozen=True)
class Patience:
    """How long a command someone sits waiting on keeps at a server that does not answer.

    Batch runs keep the client's own patience (six attempts, 60 s each): their rerun resumes.
    Environment settings (KPROV_REQUEST_DEADLINE...) can only make these shorter.
    """

    attempts: int = 2  # per request, whatever the failure: refused, reset, timeout, 5xx, 429
    connect_timeout: float = 5.0
    deadline: float = 15.0  # per attempt: connect, headers and the whole body
    max_server_wait: float = 15.0  # a longer Retry-After ends the command instead


INTERACTIVE = Patience()  # read at each build_client call, so tests can shorten it


def build_client(
    settings: Settings,
    *,
    pool_size: int = 8,
    run_id: str | None = None,
    test_accounts: bool = False,
    secret: Secret | None = None,
    secret_source: Source | None = None,
    interactive: bool = False,
) -> KnewtonClient:
    """The client for a command; *secret* is given by `auth login` (a new one, to test: no
    *secret_source*) and `auth status` (with where it came from, for the refusal's advice).

    *interactive* is for one-request commands someone waits on (`auth status`, `... get`):
    they follow ``INTERACTIVE``, so a refused port ends in about a second and a stalled or
    trickling server in about half a minute, not after six attempts of a minute.
    """
    from kprov.api.client import KnewtonClient
    from kprov.api.pacing import Pacer
    from kprov.api.transport import Limits

    if secret is None:
        secret, secret_source = find_api_secret(settings)
    refused_hint = refused_secret_hint(secret_source, settings.profile.name)

    if settings.is_builtin_sandbox:
        ensure_embedded_sandbox(settings)
    quotas = quotas_for(settings.profile)
    retry = retry_policy_from_env(os.environ)
    limits = Limits.from_env()
    if interactive:
        retry, limits = _impatient(retry, limits, INTERACTIVE)
    return KnewtonClient(
        base_url=settings.profile.base_url,
        api_key=settings.profile.api_key,
        api_secret=secret,
        token_url=settings.token_url,
        admin_external_id=settings.profile.admin_external_id,
        pool_size=pool_size,
        limits=limits,
        retry=retry,
        pacer=Pacer(quotas=quotas, ceiling=pool_size),
        request_label=run_id,
        test_accounts=test_accounts,
        refused_hint=refused_hint,
    )


def _impatient(
    retry: RetryPolicy, limits: Limits, patience: Patience
) -> tuple[RetryPolicy, Limits]:
    """*retry* and *limits* cut down to *patience* (never lengthened)."""
    attempts = min(retry.max_attempts, patience.attempts)
    retry = replace(
        retry,
        max_attempts=attempts,
        connect_attempts=attempts,
        max_rate_limit_waits=min(retry.max_rate_limit_waits, attempts - 1),
    )
    deadline = min(limits.deadline, patience.deadline)
    limits = replace(
        limits,
        connect_timeout=min(limits.connect_timeout, patience.connect_timeout, deadline),
        read_timeout=min(limits.read_timeout, deadline),
        deadline=deadline,
        max_server_wait=min(limits.max_server_wait, patience.max_server_wait),
    )
    return retry, limits


_embedded_server: object | None = None


def ensure_embedded_sandbox(settings: Settings) -> None:
    """For the built-in `sandbox` profile: serve the sandbox in-process if nobody else does.

    Its state lives in the profile's state directory, so the next command sees this one's
    accounts. It stops when the command exits. A port held by anything that is not a kprov
    sandbox is refused before a single request (or the secret) is sent to it.
    """
    global _embedded_server
    import atexit
    from urllib.parse import urlsplit

    from kprov.cli.builtin_sandbox import (
        SERVER_STATE_NAME,
        moved_port_note,
        port_held_error,
        probe_sandbox_port,
    )

    if _embedded_server is not None:
        return
    url = urlsplit(settings.profile.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    probe = probe_sandbox_port(host, port)
    if probe.is_sandbox:
        return  # `kprov sandbox serve` (or another command's sandbox) is already there
    if probe.listening:
        raise port_held_error(host, port, probe.answer, has_state=_has_owner(settings))
    from kprov.config import SANDBOX_API_KEY, SANDBOX_API_SECRET
    from kprov.sandbox.server import SandboxHTTPServer
    from kprov.sandbox.store import SandboxStore

    store = SandboxStore(
        api_key=SANDBOX_API_KEY,
        api_secret=SANDBOX_API_SECRET,
        state_path=settings.state_dir / SERVER_STATE_NAME,
    )
    try:
        server = SandboxHTTPServer((host, port), store).start_background()
    except OSError as exc:
        store.close()
        raise ConfigError(
            f"cannot start the built-in sandbox on {host}:{port}: {exc.strerror}",
            hint=f"Pick a free port: export KPROV_SANDBOX_PORT={port + 1} (or start one "
            "yourself with `kprov sandbox serve --port N`)."
            + moved_port_note(port, _has_owner(settings)),
        ) from None
    _embedded_server = server
    atexit.register(server.stop)


def _has_owner(settings: Settings) -> bool:
    """Whether the sandbox's state is bound to its port: an owner recorded over something
    recorded (a state that records nothing takes the next port's owner, as the run that
    failed here recorded its own owner before the port was probed)."""
    from kprov.state.owner import OWNER_FILE, registry_holds_records
    from kprov.state.registry import REGISTRY_FILES

    state_dir, mapping = settings.state_dir, settings.mapping_path
    if not (state_dir / OWNER_FILE).exists():
        return False
    return registry_holds_records(mapping.parent, (mapping.name,)) or registry_holds_records(
        state_dir, REGISTRY_FILES
    )
