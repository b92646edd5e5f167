"""What the API reference fixes that more than one layer checks, written once.

Plain data and one pure function, importing nothing of kprov: the roster readers, the local
state, the core and the HTTP client all read it, so the arrows between them stay one way. The
sandbox keeps its own reading of the reference on purpose (``kprov.sandbox.store``): two
independent readings catch each other's mistakes.
"""

from __future__ import annotations

import re

MAX_FIELD = 256  # characters in any character field (API entity limits)
MAX_ID_LENGTH = 255  # characters in an external id, as kprov accepts one from a roster

# Any version (older ids are time-based), canonical 8-4-4-4-12 form only: no braces, urn: or
# bare hex, which uuid.UUID() would also accept; \Z, as "$" would also take a trailing newline.
UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


def is_uuid(value: object) -> bool:
    """An API id (account, learning instance, registration, graph): a canonical UUID."""
    return isinstance(value, str) and UUID_TEXT.match(value) is not None
