"""Saved plans: `--plan --out PLAN.json` writes one, `kprov apply PLAN.json` applies exactly it.

The file carries a fingerprint of the local state it was made from (the mapping and the
registry journals, byte for byte) and a digest of its own items. `apply` refuses, sending
nothing, when either no longer matches: another run happened since, or the file was edited
or damaged (the digest catches hand edits and corruption; it is not a signature: whoever can
write the plan file and the state directory can do anything kprov can). A plan's removal
limit must also agree with its own removals.

It also carries every line it leaves alone (kept lines, compactly: ``provision.kept_lines``)
and every row the readers skipped, under a digest of their own, so the report of `apply` is
the report of the night: every line's fate. Plans saved by kprov 0.2.0 (format 1) kept only
counts of those lines; they are refused (exit 8, make the plan again), never applied with a
report that would understate every class. A name given twice in the file is refused too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kprov import strict_json
from kprov.errors import InputError, StalePlanError
from kprov.outside_text import printable
from kprov.provision.guards_json import verdict_from, verdict_json
from kprov.provision.kept_lines import decode_kept, encode_kept
from kprov.provision.plan import Action, Brake, InstanceSpec, Item, Plan
from kprov.rosters.model import Origin, Skipped
from kprov.state.local import LocalState

FORMAT = 2  # 2: kept lines and skipped rows themselves (1, kprov 0.2.0: counts only)
_ITEM_TEXT = ("external_id", "role", "instance", "instance_id", "account_id", "registration_id",
              "sis_id", "reason", "change", "guard")  # fmt: skip


def state_fingerprint(state: LocalState) -> str:
    """sha256 over the journals that a plan's decisions rest on (absent files count too)."""
    digest = hashlib.sha256()
    paths: Iterable[Path] = (
        state.journal.path,
        state.registry.instances.path,
        state.registry.registrations.path,
    )
    for path in paths:
        digest.update(str(path).encode() + b"\0")
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError:
            digest.update(b"<absent>")
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def _item_json(item: Item) -> dict[str, Any]:
    data: dict[str, Any] = {"action": item.action.value}
    data.update({key: getattr(item, key) for key in _ITEM_TEXT if getattr(item, key)})
    if item.origin is not None:
        data["file"], data["line"] = item.origin.file, item.origin.line
    if item.spec is not None:
        data["spec"] = item.spec._asdict()
    if item.role_change:
        data["role_change"] = True
    return data


def _items_digest(items: list[dict[str, Any]]) -> str:
    canonical = json.dumps(items, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _lines_digest(kept_lines: Any, skipped: Any, guards: Any = None) -> str:
    return _items_digest([kept_lines, skipped] + ([guards] if guards is not None else []))


def saved_document(plan: Plan) -> dict[str, Any]:
    items = [_item_json(i) for i in plan.items]
    kept_lines = encode_kept(plan.kept, plan.default_instance)
    skipped = [[s.origin.file, s.origin.line, s.external_id, s.reason] for s in plan.skipped]
    guards = verdict_json(plan.guards)
    return {
        "kprov_plan": FORMAT,
        "command": plan.command,
        "profile": plan.profile,
        "base_url": plan.base_url,
        "created_at": plan.created_at,
        "run_id": plan.planned_in,
        "state_fingerprint": plan.fingerprint,
        "prune": plan.prune,
        "brake": None if plan.brake is None else plan.brake.__dict__,
        "sources": list(plan.sources),
        "warnings": list(plan.warnings),
        "kept": plan.counts_kept(),
        "items_digest": _items_digest(items),
        "lines_digest": _lines_digest(kept_lines, skipped, guards),
        "items": items,
        "kept_lines": kept_lines,
        "skipped": skipped,
        "guards": guards,
    }


def save_plan(plan: Plan, path: Path) -> None:
    """Written atomically, 0600: a plan file is either whole or absent."""
    from kprov.state.files import replace_private

    replace_private(path, json.dumps(saved_document(plan), indent=1) + "\n")


def load_plan(path: Path) -> Plan:
    """Read a saved plan; anything that is not one, or was edited, is refused (exit 2)."""
    try:
        document = strict_json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such plan file") from None
    except strict_json.DuplicateName as twice:  # a hand edit: name the key, printable
        name = printable(twice.name[:40])
        raise InputError(
            f"{path} is not a kprov plan file: the name {name!r} appears twice in one object"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not a kprov plan file: {exc}") from None
    except RecursionError:  # JSON nested thousands deep: not a plan, and no traceback
        raise InputError(f"{path} is not a kprov plan file: nested too deep") from None
    if isinstance(document, dict) and document.get("kprov_plan") == 1:
        raise StalePlanError(
            f"{path} was saved by kprov 0.2.0 (plan format 1), which kept only counts of the "
            "lines it leaves alone: its report could not list every line; nothing was sent",
            hint="Make the plan again with this version (kprov sync MANIFEST --plan --out "
            "PLAN.json), review it, and apply the new one.",
        )
    if not isinstance(document, dict) or document.get("kprov_plan") != FORMAT:
        raise InputError(
            f"{path} is not a kprov plan file (format {FORMAT})",
            hint="Make one with `kprov sync MANIFEST --plan --out PLAN.json`.",
        )
    raw_items = document.get("items")
    if not isinstance(raw_items, list) or _items_digest(raw_items) != document.get("items_digest"):
        raise InputError(
            f"{path}: the plan's items do not match its digest: the file was edited or damaged",
            hint="Make the plan again; kprov applies only plans exactly as they were made.",
        )
    kept_lines, skipped = document.get("kept_lines"), document.get("skipped")
    guards = document.get("guards")
    if _lines_digest(kept_lines, skipped, guards) != document.get("lines_digest"):
        raise InputError(
            f"{path}: the plan's kept lines do not match their digest: the file was edited or "
            "damaged",
            hint="Make the plan again; kprov applies only plans exactly as they were made.",
        )
    try:
        items = tuple(_item_from(raw) for raw in raw_items)
        brake = document.get("brake")
        _check_brake(path, str(document["command"]), items, brake)
        if isinstance(brake, dict) and Brake(**brake).engaged:
            items = _braked(items)  # a plan saved before items named their guard
        return Plan(
            command=str(document["command"]),
            items=items,
            brake=Brake(**brake) if isinstance(brake, dict) else None,
            prune=bool(document.get("prune")),
            warnings=tuple(str(w) for w in document.get("warnings") or ()),
            fingerprint=str(document["state_fingerprint"]),
            profile=str(document.get("profile") or ""),
            base_url=str(document.get("base_url") or ""),
            created_at=str(document.get("created_at") or ""),
            planned_in=str(document.get("run_id") or ""),
            sources=tuple(str(s) for s in document.get("sources") or ()),
            kept=decode_kept(kept_lines),
            skipped=tuple(_skipped_from(row) for row in skipped or ()),
            guards=verdict_from(guards),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path} is not a well-formed kprov plan: {exc!r}") from None


def _skipped_from(raw: Any) -> Skipped:
    file, line, external_id, reason = raw
    return Skipped(Origin(str(file), int(line)), str(external_id), str(reason))


def _check_brake(path: Path, command: str, items: tuple[Item, ...], brake: Any) -> None:
    """A sync plan that removes carries its limit, and the limit counts its removals: those
    the source guard had not withheld already (``planner_guards._judge_brake``)."""
    from kprov.provision.guards import SOURCE

    removals = sum(1 for i in items if i.action is Action.UNREGISTER and i.guard != SOURCE)
    if (brake is None and removals and command == "sync") or (
        isinstance(brake, dict) and brake.get("removals") != removals
    ):
        raise InputError(
            f"{path}: the plan's removal limit does not match its removals: the file was "
            "edited; nothing was sent",
            hint="Make the plan again; kprov applies only plans exactly as they were made.",
        )


def _braked(items: tuple[Item, ...]) -> tuple[Item, ...]:
    """The removals (and role changes) of a plan whose removal brake is engaged are
    withheld, whether or not the file names their guard (kprov 0.2's plans do not)."""
    from kprov.provision.guards import REMOVALS

    return tuple(
        i._replace(guard=REMOVALS)
        if not i.guard and (i.action is Action.UNREGISTER or i.role_change)
        else i
        for i in items
    )


def _item_from(raw: Any) -> Item:
    if not isinstance(raw, dict):
        raise TypeError("an item is not an object")
    text = {key: str(raw.get(key) or "") for key in _ITEM_TEXT}
    origin = Origin(str(raw["file"]), int(raw["line"])) if "file" in raw else None
    spec = InstanceSpec(**raw["spec"]) if isinstance(raw.get("spec"), dict) else None
    _check_text(text, spec)
    return Item(
        Action(raw["action"]),
        origin=origin,
        spec=spec,
        role_change=bool(raw.get("role_change")),
        **text,
    )


def _check_text(text: dict[str, str], spec: InstanceSpec | None) -> None:
    """What a plan would send or record passes the input rules again (a plan file is not
    signed: one written by hand must not carry a formula or an escape sequence past them)."""
    from kprov.rosters.validate import key_problems, name_problems

    wrong = key_problems(text["instance"]) if text["instance"] else []
    if spec is not None:
        wrong += key_problems(spec.graph_id, "graph id") + name_problems(spec.name)
    for field in ("external_id", "sis_id"):
        wrong += key_problems(text[field], "id") if text[field] else []
    from kprov.provision.guards import GUARD_ORDER

    if text["guard"] and text["guard"] not in GUARD_ORDER:
        wrong.append(f"unknown guard {text['guard']!r}")
    if wrong:
        raise ValueError(wrong[0])


def check_same_target(plan: Plan, profile: str, base_url: str) -> None:
    """Refuse (exit 8, nothing sent) a plan made for another profile or API; checked before
    the local state is even opened."""
    if (plan.profile, plan.base_url) != (profile, base_url):
        raise StalePlanError(
            f"the plan was made for profile {plan.profile!r} ({plan.base_url}); this is "
            f"profile {profile!r} ({base_url}); nothing was sent",
            hint="Apply it with the profile it was made for, or make a new plan.",
        )


def check_still_applies(plan: Plan, state: LocalState, profile: str, base_url: str) -> None:
    """Refuse (exit 8, nothing sent) a plan made for another target or other local state."""
    check_same_target(plan, profile, base_url)
    if state_fingerprint(state) != plan.fingerprint:
        raise StalePlanError(
            f"the local state changed since the plan was made ({plan.created_at}): another "
            "run happened in between; nothing was sent",
            hint="Make the plan again (kprov sync MANIFEST --plan --out PLAN.json), review "
            "it, and apply the new one.",
        )
