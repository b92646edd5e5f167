"""What the guards decided, as JSON: in a saved plan (`--plan --out`, so that `kprov apply`
records what the plan's night judged: its hold, its fingerprints, its absence counts) and
in the ledger's hold rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kprov.provision.guards import GuardTrip, GuardVerdict
from kprov.provision.guards_grace import Absence, AbsenceUpdate
from kprov.provision.guards_sources import SourceFingerprint


def trip_json(trip: GuardTrip) -> dict[str, Any]:
    return {"guard": trip.guard, "why": trip.why, "items": trip.items, "source": trip.source}


def trip_from(raw: Mapping[str, Any]) -> GuardTrip:
    return GuardTrip(str(raw["guard"]), str(raw["why"]), int(raw["items"]), str(raw["source"]))


def fingerprint_json(fingerprint: SourceFingerprint) -> dict[str, Any]:
    return {**fingerprint.to_json(), "sample": list(fingerprint.sample)}


def fingerprint_from(raw: Mapping[str, Any]) -> SourceFingerprint:
    sample = raw.get("sample") or []
    if not isinstance(sample, list) or not all(isinstance(h, int) for h in sample):
        raise ValueError("a fingerprint's sample is not a list of hashes")
    return SourceFingerprint.from_json(raw, sample)


def absence_json(record: Absence) -> dict[str, Any]:
    return dict(record.__dict__)


def absence_from(raw: Mapping[str, Any]) -> Absence:
    fields = Absence.__dataclass_fields__
    return Absence(**{k: v for k, v in raw.items() if k in fields})


def update_json(update: AbsenceUpdate) -> dict[str, Any]:
    return {
        "instances": sorted(update.instances),
        "sources": sorted(update.sources),
        "records": [absence_json(r) for r in update.records],
    }


def update_from(raw: Mapping[str, Any]) -> AbsenceUpdate:
    return AbsenceUpdate(
        frozenset(str(s) for s in raw.get("instances") or ()),
        frozenset(str(s) for s in raw.get("sources") or ()),
        tuple(absence_from(r) for r in raw.get("records") or ()),
    )


def verdict_json(verdict: GuardVerdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {
        "trips": [trip_json(t) for t in verdict.trips],
        "fingerprints": [fingerprint_json(f) for f in verdict.fingerprints],
        "held_sources": sorted(verdict.held_sources),
        "absences": update_json(verdict.absences),
        "held_absences": update_json(verdict.held_absences),
    }


def verdict_from(raw: Any) -> GuardVerdict | None:
    """The verdict a saved plan carries (TypeError/KeyError/ValueError when malformed)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TypeError("guards is not an object")
    return GuardVerdict(
        trips=tuple(trip_from(t) for t in raw.get("trips") or ()),
        fingerprints=tuple(fingerprint_from(f) for f in raw.get("fingerprints") or ()),
        held_sources=frozenset(str(s) for s in raw.get("held_sources") or ()),
        absences=update_from(raw.get("absences") or {}),
        held_absences=update_from(raw.get("held_absences") or {}),
    )
