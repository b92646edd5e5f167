"""The judgment "tonight's export is not the one we know" (docs/holds.md): re-keyed ids, a
new id shape, leading zeros dropped, a source (or a bundle's enrolments) that shrank
sharply. Pure: it compares tonight's fingerprint (``guards_sources.observe``) with the one
of the export last applied, which the caller reads from the ledger."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import compress, filterfalse
from operator import itemgetter, not_

from kprov.provision.guards_sources import ALL, MIN_IDS, Observation, Shape, SourceFingerprint


@dataclass(frozen=True)
class SourceJudgment:
    source: str
    held: bool
    words: str  # the change, for a person: "last applied export: ...; this one: ..."
    short: str = ""  # "re-keyed?", "shrank sharply", "its ids changed shape"


@dataclass(frozen=True)
class Thresholds:
    """When a source is held (docs/holds.md); every share in percent."""

    min_seen: float = 50.0  # fewer of tonight's ids seen before: re-keyed?
    max_shrink: float = 50.0  # fewer ids than this share of the last export's gone: shrank


def judge(
    last: SourceFingerprint | None,
    tonight: Observation,
    known: Collection[str],
    limits: Thresholds,
) -> SourceJudgment:
    """Whether tonight's export of a source is to be held, with the change in words. The
    first export of a source (no *last*) is never held; neither is a small one."""
    now = tonight.fingerprint
    source = now.source
    if last is None or max(last.ids, now.ids) < MIN_IDS:
        return SourceJudgment(source, False, "")
    before = f"last applied export: {describe(last)}; this one: {describe(now)}"
    if now.delta:  # a delta lists changes: only their shape can be compared
        strong = now.ids >= MIN_IDS and shape_change(last.shape, now.shape, prefix=False)
        changed = shape_change(last.shape, now.shape) if strong else ""
        words = f"{before}; {changed}: re-keyed?" if changed else ""
        return SourceJudgment(source, bool(changed), words, "its ids changed shape")
    if last.ids >= MIN_IDS and now.ids < last.ids * (1 - limits.max_shrink / 100):
        lost = 100 * (last.ids - now.ids) / last.ids
        words = f"{before}: {lost:.0f} % fewer ids: shrank sharply"
        return SourceJudgment(source, True, words, "it shrank sharply")
    if last.enrolments >= MIN_IDS and now.enrolments < last.enrolments * (
        1 - limits.max_shrink / 100
    ):
        lost = 100 * (last.enrolments - now.enrolments) / last.enrolments
        words = (
            f"{before}; enrolments: {last.enrolments:,} then, {now.enrolments:,} now: "
            f"{lost:.0f} % fewer: shrank sharply (an enrolment file cut short?)"
        )
        return SourceJudgment(source, True, words, "its enrolments shrank sharply")
    seen, exact, in_export = overlap(last, tonight, known)
    if seen is None or in_export is None:
        return SourceJudgment(source, False, "")
    similar = now.ids <= 2 * last.ids  # a source that more than doubled is a merger
    count = round(seen * now.ids)
    seen_words = f"{count:,} seen before" if exact else f"about {count:,} ({seen:.0%}) seen before"
    changed = shape_change(last.shape, now.shape)
    strong = shape_change(last.shape, now.shape, prefix=False)
    if similar and seen < limits.min_seen / 100:
        tail = f"; {changed}" if changed else ""
        words = f"{before}; {seen_words}{tail}: re-keyed?"
        return SourceJudgment(source, True, words, "few of its ids were seen before: re-keyed?")
    if similar and strong and in_export < limits.min_seen / 100:
        words = f"{before}; {seen_words}; {changed}: re-keyed?"
        return SourceJudgment(source, True, words, "its ids changed shape: re-keyed?")
    stripped = zeros_dropped(last, tonight, known)
    if stripped:
        words = (
            f"{before}; {seen_words}; {stripped:,} new id(s) are ids the mapping holds with "
            "leading zeros (a spreadsheet dropped them?): re-keyed?"
        )
        return SourceJudgment(source, True, words, "leading zeros dropped from some ids")
    return SourceJudgment(source, False, "")


def zeros_dropped(last: SourceFingerprint, tonight: Observation, known: Collection[str]) -> int:
    """How many of tonight's sampled ids are new, yet are an id the mapping holds once their
    digits are padded with zeros to a length the last export had: a spreadsheet's round
    trip changes only the ids that start with 0 (a tenth of random student numbers), too
    few for the overlap to say "re-keyed", and every one of them would be a second account
    for a student who has one. (The new ids are picked in C loops: a night of 4,000 class
    files samples a million ids, and most are seen.)"""
    if not known or tonight.fingerprint.sample == last.sample:  # nothing new in the sample
        return 0
    before = set(last.sample)
    fresh = compress(
        map(_EXT, tonight.sampled), map(not_, map(before.__contains__, map(_HASH, tonight.sampled)))
    )
    count = 0
    for ext in filterfalse(_member(known), fresh):
        digits = len(ext) - len(ext.rstrip("0123456789"))
        if not digits:
            continue
        head, tail = ext[: len(ext) - digits], ext[len(ext) - digits :]
        widths = range(len(ext) + 1, last.shape.longest + 1)
        if any(head + tail.rjust(width - len(head), "0") in known for width in widths):
            count += 1
    return count


def overlap(
    last: SourceFingerprint, tonight: Observation, known: Collection[str]
) -> tuple[float | None, bool, float | None]:
    """(share of tonight's ids seen before -- in the last export or in the mapping --,
    whether that share is exact, share seen in the last export alone); None when tonight's
    sample has nothing under the last sample's threshold to measure with. Counted in C
    loops (a million sampled ids a night, 4,000 sources)."""
    threshold = last.threshold
    sampled = tonight.sampled
    if tonight.fingerprint.sample == last.sample and sampled:  # the same export: all seen
        exact = threshold == ALL and len(sampled) == tonight.fingerprint.ids
        return 1.0, exact, 1.0
    measured = list(compress(sampled, map(threshold.__ge__, map(_HASH, sampled))))
    if not measured:
        return None, False, None
    before = set(last.sample)
    in_before = list(map(before.__contains__, map(_HASH, measured)))
    in_export = sum(in_before)
    rest = compress(map(_EXT, measured), map(not_, in_before))
    seen = in_export + sum(map(_member(known), rest))
    exact = threshold == ALL and len(measured) == tonight.fingerprint.ids
    return seen / len(measured), exact, in_export / len(measured)


_HASH, _EXT = itemgetter(0), itemgetter(1)


def _member(known: Collection[str]) -> Callable[[object], bool]:
    """``in known``, in C where *known* is a mapping (the mapping's ``AccountIds``: its dict's
    keys, not its Python ``__contains__``)."""
    keys = getattr(known, "keys", None)
    return (keys() if keys is not None else known).__contains__


def shape_change(last: Shape, now: Shape, *, prefix: bool = True) -> str:
    """What changed in the ids' shape, in words ("" when nothing that matters did). A lost
    prefix is named (*prefix*) but never decides alone: a class file's few ids share a
    prefix by chance, and tomorrow's transfer students need not."""
    changes = []
    if now.longest < last.shortest or now.shortest > last.longest:
        changes.append("their lengths changed")
    if (last.digits >= 0.99 and now.digits < 0.5) or (last.digits < 0.5 and now.digits >= 0.99):
        changes.append("their characters changed")
    if last.leading_zeros >= 0.1 and now.leading_zeros == 0:
        changes.append("leading zeros dropped")
    elif last.leading_zeros == 0 and now.leading_zeros >= 0.1:
        changes.append("leading zeros added")
    if prefix and _named_prefix(last.prefix) and not now.prefix.startswith(last.prefix):
        changes.append(f"prefix {last.prefix!r} gone")
    return ", ".join(changes)


def describe(fingerprint: SourceFingerprint) -> str:
    """ "1,093 ids, 9 digits with leading zeros"."""
    shape = fingerprint.shape
    about = "about " if fingerprint.ids > len(fingerprint.sample) else ""
    words = [f"{about}{fingerprint.ids:,} ids"]
    if not fingerprint.ids:
        return words[0]
    lengths = (
        f"{shape.shortest}" if shape.shortest == shape.longest
        else f"{shape.shortest}–{shape.longest}"
    )  # fmt: skip
    kind = "digits" if shape.digits >= 0.99 else (
        "characters" if shape.letters < 0.01 else "letters and digits"
    )  # fmt: skip
    zeros = " with leading zeros" if shape.leading_zeros >= 0.1 else (
        ", no leading zeros" if shape.digits >= 0.99 else ""
    )  # fmt: skip
    words.append(f"{lengths} {kind}{zeros}")
    if _named_prefix(shape.prefix):
        words.append(f"all starting {shape.prefix!r}")
    return ", ".join(words)


def _named_prefix(prefix: str) -> bool:
    """A prefix worth naming: two characters or more, and not only the leading zeros
    (those are named as such)."""
    return len(prefix) >= 2 and bool(prefix.strip("0"))
