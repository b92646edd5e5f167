"""What a learning instance keeps from its creation: its graph, its name, its dates.

The Knewton API creates a learning instance (``POST /learning-instances``: graph, name,
dates) and can get or delete it; nothing changes one afterwards: the graph is immutable by
the reference, and no call renames or re-dates an instance. So a manifest that changes one
of them for a class kprov already created asks for something no run can do. Saying nothing
("nothing to do", exit 0) would let the operator believe the platform shows the new name;
deleting and recreating the class would discard every learner's analytics. The plan says
it instead, as a warning on every plan and run until the manifest agrees again (a cron job
mails it every night), and leaves the instance as it is.

Compared with what the registry recorded when kprov created the instance
(``InstanceRecord``: graph, name, start and end dates); a field it does not know (empty
graph or name) is not compared. Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kprov.api_facts import is_uuid
from kprov.state.registry import InstanceRecord

if TYPE_CHECKING:
    from kprov.provision.request import Request

LEFT = "it is left as it is"
FIX = (
    "put the manifest back, or give the class a new key for a new instance (the old one "
    "keeps its registrations and analytics)"
)


def unchangeable(ref: str, record: InstanceRecord, request: Request) -> list[str]:
    """One warning per field the request's spec of *ref* asks to change in the instance
    kprov created (*record*); none when they agree."""
    spec = request.specs[ref]
    if ref in request.named_by_key:  # no name was asked for: the key stood in for one
        spec = spec._replace(name=record.name)
    origin = request.instance_origins.get(ref)
    where = f"instance {ref}" + (f" ({origin})" if origin is not None else "")
    found = []
    if record.graph_id and _graph(record.graph_id) != _graph(spec.graph_id):
        found.append(
            f"{where} exists with graph {record.graph_id}; the manifest says {spec.graph_id}: "
            f"an instance's graph cannot change; {LEFT}: {FIX}"
        )
    if record.name and record.name != spec.name:
        found.append(
            f"{where} exists named {record.name!r}; the manifest says {spec.name!r}: the API "
            f"cannot rename an instance; {LEFT}: {FIX}"
        )
    before = (record.start_date, record.end_date)
    if before != (spec.start_date, spec.end_date):
        found.append(
            f"{where} exists with {_dates(*before)}; the manifest says "
            f"{_dates(spec.start_date, spec.end_date).removeprefix('dates ')}: the API "
            f"cannot change an instance's dates; {LEFT}: {FIX}"
        )
    return found


def _graph(graph_id: str) -> str:
    return graph_id.lower() if is_uuid(graph_id) else graph_id


def _dates(start: str, end: str) -> str:
    if not start and not end:
        return "no dates"
    return f"dates {start or '(none)'} to {end or '(none)'}"
