"""`mapping verify`: check mapped ids against the API, each under the user's own token.

The user's token answers for exactly one external id, so it checks the id -> account link
itself, and it spends that user's read quota rather than the admin's tiny shared one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kprov.api.client import KnewtonClient
from kprov.api.errors import ApiError, TokenRefused
from kprov.api.ids import same_id
from kprov.errors import Interrupted, KprovError
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


@dataclass
class Verification:
    mismatches: list[Mismatch]
    checked: int
    stopped_by: KprovError | None = None  # the API down, credentials refused, Ctrl-C


def verify_ids(
    client: KnewtonClient,
    index: MappingIndex,
    ids: list[str],
    *,
    concurrency: int = 4,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Every id whose account on the API differs from the mapping (or cannot be found).

    An error that means no further id can be checked (the API down, the credentials refused,
    an interruption) stops the verification; ids not checked are not counted as checked.
    """
    from kprov.provision.tasks import RUN_STOPPERS

    result = Verification([], 0)
    lock = threading.Lock()
    queue = iter(ids)

    def check(external_id: str) -> None:
        mapped = index.account_of[external_id]
        try:
            actual = client.account_id_of(external_id)
        except TokenRefused:
            found: Mismatch | None = Mismatch(
                external_id, mapped, None, "no active account with this external id"
            )
        else:
            found = None
            if not same_id(actual, mapped):
                problem = "the API has another account for this id"
                found = Mismatch(external_id, mapped, actual, problem)
        with lock:
            result.checked += 1
            if found is not None:
                result.mismatches.append(found)
        if progress:
            progress(1)

    def worker() -> None:
        while result.stopped_by is None and not client.cancel.is_set():
            with lock:
                external_id = next(queue, None)
            if external_id is None:
                return
            try:
                check(external_id)
            except RUN_STOPPERS as error:
                with lock:
                    result.stopped_by = result.stopped_by or error
                client.cancel.set()
            except ApiError as error:
                with lock:
                    result.checked += 1
                    result.mismatches.append(
                        Mismatch(external_id, index.account_of[external_id], None,
                                 f"could not check: {error}")
                    )  # fmt: skip

    threads = [threading.Thread(target=worker) for _ in range(max(1, concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if result.stopped_by is None and client.cancel.is_set():
        result.stopped_by = Interrupted("interrupted: the rest was not checked")
    return result
