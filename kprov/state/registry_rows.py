"""A registration row: its record, its key's account form, and its flags in the index.

``state.registry_index`` keeps a slot per active registration (the journal line, a byte of
flags, the external id); this module holds what a row is, and how a line becomes a record.
"""

from __future__ import annotations

from typing import NamedTuple

from kprov.api_facts import UUID_TEXT
from kprov.state.mapping_index import Account

REGISTRATION_HEADER = (
    "account_id", "instance_id", "type", "registration_id", "external_user_id", "created_at",
    "status",
)  # fmt: skip
REGISTERED = "registered"
REMOVED = "removed"  # kprov deleted it on the server
NOTED = "noted"  # registered, id unknown, and the operator has been told so once
FORGOTTEN = "forgotten"  # dropped from local state by the operator; still on the server
SENT = "sent"  # a registration request is about to be sent (its answer not recorded yet)

Key = tuple[Account, int]  # (account as the mapping stores it, instance code)

# A slot's flags: its type in the low two bits, then whether it has no id, and is noted.
LEARNER_KIND, INSTRUCTOR_KIND, OTHER_KIND = 0, 1, 2
KIND_OF = {"learner": LEARNER_KIND, "instructor": INSTRUCTOR_KIND}
NO_ID, NOTED_FLAG = 4, 8
KIND_MASK = 0x83  # kind bits, and the top bit: slot 0 (no registration) is 0xFF
NOWHERE = 0  # the slot of no registration: its flags match no kind


class RegistrationRecord(NamedTuple):
    """One registration row (a tuple, in the journal's column order: a statewide registry
    holds millions, and a frozen dataclass cost three times as much to make; change one with
    ``_replace``)."""

    account_id: str
    instance_id: str
    type: str
    registration_id: str  # "" when the API confirmed the registration without its id
    external_user_id: str
    created_at: str = ""
    status: str = REGISTERED

    def row(self) -> tuple[str, ...]:
        return self

    @property
    def unresolved(self) -> bool:
        """Registered, but kprov does not know its id, so it can never remove it."""
        return not self.registration_id

    @property
    def noted(self) -> bool:
        """An unresolved registration the operator has already been told about."""
        return self.status == NOTED


def account_value(account_id: str) -> Account:
    """The key's form of a recorded account id: a lower-case UUID as its number (as the
    mapping keeps it); anything else, an upper-case UUID included, as its text (so it is
    found only by that text, as a dict of texts would)."""
    if UUID_TEXT.match(account_id) and account_id == account_id.lower():
        return int(account_id.replace("-", ""), 16)
    return account_id


def flags_of(record: RegistrationRecord) -> int:
    flags = KIND_OF.get(record.type, OTHER_KIND)
    if not record.registration_id:
        flags |= NO_ID
    if record.status == NOTED:
        flags |= NOTED_FLAG
    return flags


def record_of_line(line: str) -> RegistrationRecord:
    """The record of a plain journal line (ids canonical: lower case)."""
    account, instance, kind, registration, *rest = line.rstrip("\n").split(",")
    return RegistrationRecord(account.lower(), instance.lower(), kind, registration.lower(), *rest)
