"""Building the API client for a command from its settings: the one place that joins them."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from kprov.config import Settings
from kprov.credentials import resolve_api_secret

if TYPE_CHECKING:
    from kprov.api.client import KnewtonClient


def new_run_id() -> str:
    """Short id sent as ``request-label`` on every call, so support can find a run's requests."""
    return "kprov-" + secrets.token_hex(6)


def build_client(
    settings: Settings,
    *,
    pool_size: int = 8,
    run_id: str | None = None,
    test_accounts: bool = False,
) -> KnewtonClient:
    from kprov.api.client import KnewtonClient

    secret = resolve_api_secret(settings)
    return KnewtonClient(
        base_url=settings.profile.base_url,
        api_key=settings.profile.api_key,
        api_secret=secret,
        token_url=settings.token_url,
        admin_external_id=settings.profile.admin_external_id,
        pool_size=pool_size,
        request_label=run_id,
        test_accounts=test_accounts,
    )
