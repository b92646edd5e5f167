"""One OneRoster REST source, as the manifest describes it (``oneroster_api:`` entries, read
by ``rosters.manifest_api``); ``kprov.sis`` pulls it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

V11, V12 = "1.1", "1.2"
VERSIONS = (V11, V12)
OAUTH1, OAUTH2 = "oauth1", "oauth2"
# Where each version's rostering service lives, under the SIS's own prefix (IMS OneRoster 1.1
# REST binding: /ims/oneroster/v1p1; 1.2 Rostering Service binding: .../rostering/v1p2).
BASE_SUFFIX = {V11: "/ims/oneroster/v1p1", V12: "/ims/oneroster/rostering/v1p2"}
DEFAULT_PAGE_SIZE = 100  # the bindings' default `limit`; servers may cap it lower
MAX_PAGE_SIZE = 10_000


@dataclass(frozen=True)
class ApiSource:
    """Where to pull from and how to sign in; the secret itself is never held here."""

    url: str  # the service base, ending at the version: https://sis/ims/oneroster/v1p1
    version: str  # "1.1" | "1.2"
    auth: str  # "oauth1" (1.0a, HMAC-SHA256) | "oauth2" (client credentials)
    client_id: str
    token_url: str = ""  # oauth2 only
    scope: str = ""  # oauth2 only, when the SIS wants one
    secret_file: str = ""  # a file holding the secret (mode 0600)
    secret_env: str = ""  # the name of an environment variable holding it
    schools: tuple[str, ...] = ()  # org sourcedIds whose classes are wanted (empty: all)
    delta: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    where: str = ""  # manifest:line, for messages

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def keyring_user(self) -> str:
        """The keyring entry (service ``kprov``) that may hold this source's secret."""
        return f"oneroster:{self.client_id}@{self.host}"

    @property
    def cursor_key(self) -> str:
        """What identifies this source's delta cursor: the same URL, client and schools."""
        schools = ",".join(sorted(self.schools))
        return f"{self.url}|{self.client_id}|{schools}"

    def collection_url(self, collection: str) -> str:
        return f"{self.url}/{collection}"
