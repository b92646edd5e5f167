"""Role words: what a roster may call a learner or an instructor, and what kprov leaves alone.

SIS exports do not agree on words (`Student`, `pupil`, `professor`, OneRoster 1.2's
`districtAdministrator`...). A word either maps to one of kprov's two roles, or names a role
kprov does not provision (reported as skipped, never silently dropped), or is an error that
names the accepted words.
"""

from __future__ import annotations

from kprov.rosters.model import INSTRUCTOR, LEARNER

LEARNER_WORDS = ("student", "learner", "pupil")
INSTRUCTOR_WORDS = ("teacher", "instructor", "professor", "faculty")
ACCEPTED = f"{', '.join(LEARNER_WORDS)} (learner); {', '.join(INSTRUCTOR_WORDS)} (instructor)"

# Roles that exist in OneRoster 1.1, OneRoster 1.2 and Microsoft SDS but that kprov does not
# provision: staff, family and administrators have no place in a learning instance.
NOT_PROVISIONED = frozenset(
    word.lower()
    for word in (
        # OneRoster 1.1 and 1.2
        "administrator", "aide", "guardian", "parent", "proctor", "relative", "counselor",
        "districtAdministrator", "principal", "siteAdministrator", "systemAdministrator",
        # Microsoft SDS v2.1 (roles.csv) beyond the above
        "chair", "researcher", "adjunct", "affiliate", "occupationalTherapist",
        "physicalTherapist", "speechTherapist", "visionTherapist", "paraprofessional",
        "specialServices", "advisor", "nurse", "officeStaff", "lecturer", "itAdmin", "staff",
        "teacherAssistant", "assistant", "substitute", "coach", "alumni", "other",
    )
)  # fmt: skip

_ROLE_OF: dict[str, str] = {w: LEARNER for w in LEARNER_WORDS} | {
    w: INSTRUCTOR for w in INSTRUCTOR_WORDS
}
# exact spellings seen in exports, looked up before any normalisation (the hot path)
FAST_ROLE_OF: dict[str, str] = {
    spelled: role
    for word, role in _ROLE_OF.items()
    for spelled in (word, word.capitalize(), word.upper())
}


class RoleError(ValueError):
    """A role word that is neither provisioned nor a known role kprov leaves alone."""


def role_of(word: str, *, empty: str | None = None) -> str | None:
    """LEARNER or INSTRUCTOR; None for a known role kprov does not provision.

    *empty* is the role of an empty cell (plain rosters: learner); when it is None an empty
    role is an error. Vendor extensions (``ext:...``) are known roles kprov leaves alone.
    """
    found = FAST_ROLE_OF.get(word)
    if found is not None:
        return found
    key = word.strip().lower()
    if not key:
        if empty is None:
            raise RoleError(f"the role is empty; use one of: {ACCEPTED}")
        return empty
    found = _ROLE_OF.get(key)
    if found is not None:
        return found
    if key in NOT_PROVISIONED or key.startswith("ext:"):
        return None
    raise RoleError(f"role {word.strip()!r} is not one of: {ACCEPTED}")
