"""`mapping verify`: check mapped ids against the API, each under the user's own token.

The user's token answers for exactly one external id, so it checks the id -> account link
itself, and it spends that user's read quota rather than the admin's tiny shared one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kprov.api.client import KnewtonClient
from kprov.api.errors import ApiError, TokenRefused
from kprov.state.mapping import MappingIndex


@dataclass(frozen=True, slots=True)
class Mismatch:
    external_user_id: str
    mapped_account_id: str
    api_account_id: str | None
    problem: str


def select_ids(index: MappingIndex, sample: int | None, seed: int | None = None) -> list[str]:
    """Active mapped ids to check: all of them, or a random sample of *sample*."""
    ids = [e for e in index.account_of if e not in index.disabled]
    if sample is not None and sample < len(ids):
        ids = random.Random(seed).sample(ids, sample)
    return ids


def verify_ids(
    client: KnewtonClient,
    index: MappingIndex,
    ids: list[str],
    *,
    concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> list[Mismatch]:
    """Every id whose account on the API differs from the mapping (or cannot be found)."""

    def check(external_id: str) -> Mismatch | None:
        mapped = index.account_of[external_id]
        found: Mismatch | None

        try:
            actual = client.account_id_of(external_id)
        except TokenRefused:
            found = Mismatch(external_id, mapped, None, "no active account with this external id")
        except ApiError as exc:
            found = Mismatch(external_id, mapped, None, f"could not check: {exc}")
        else:
            found = (
                None
                if actual == mapped
                else Mismatch(
                    external_id, mapped, actual, "the API has another account for this id"
                )
            )
        if progress:
            progress(1)
        return found

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return [m for m in pool.map(check, ids) if m is not None]
