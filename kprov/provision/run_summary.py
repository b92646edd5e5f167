"""How a run ended, in the forms unattended runs are watched through: the webhook document a
chat channel shows (`--notify`) and the Prometheus text node_exporter's textfile collector
reads (`--metrics-file`). Both are built from one ``RunSummary``; pure functions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kprov.errors import ExitCode, meaning

FIRST_FAILURES = 10  # failures named in a notification (the report lists them all)
NOTICE_COUNTS = ("held", "withheld")  # something waits for a person: worth a message
ALWAYS_COUNTED = ("created", "registered", "removed", "failed", "not_attempted", "held",
                  "withheld")  # fmt: skip


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    command: str
    profile: str
    api_host: str
    os_user: str
    host: str
    started_at: float  # Unix time
    ended_at: float
    exit_code: int
    error: str = ""  # the message of what stopped the run
    counts: Mapping[str, int] = field(default_factory=dict)
    requests: int = 0
    rate_limited: int = 0
    failures: Sequence[str] = ()  # "where: who in instance: reason", first ones
    resume: str = ""  # the command that reruns (and resumes) this run
    last_clean: float | None = None  # when a run of this command last ended with exit 0
    hold_id: str = ""  # the hold this run saved (what its guards withheld)
    guards: Sequence[str] = ()  # why each guard that tripped did


def needs_notice(summary: RunSummary, notify_on: str) -> bool:
    """A run that failed, was stopped, or left anything held or withheld; or every run."""
    if notify_on == "always":
        return True
    return summary.exit_code != 0 or any(summary.counts.get(k) for k in NOTICE_COUNTS)


def notification(summary: RunSummary) -> dict[str, Any]:
    """The JSON document posted to the webhook; ``text`` is what Slack and Teams show."""
    return {
        "kprov": "run",
        "run_id": summary.run_id,
        "command": summary.command,
        "profile": summary.profile,
        "api_host": summary.api_host,
        "host": summary.host,
        "os_user": summary.os_user,
        "exit_code": summary.exit_code,
        "status": status(summary.exit_code),
        "meaning": meaning(summary.exit_code),
        "error": summary.error or None,
        "counts": dict(summary.counts),
        "failures": list(summary.failures[:FIRST_FAILURES]),
        "resume": summary.resume,
        "hold_id": summary.hold_id or None,
        "approve": f"kprov holds approve {summary.hold_id}" if summary.hold_id else None,
        "text": _text(summary),
    }


STATUS_WORDS = {"ok": "ended", "needs_approval": "NEEDS APPROVAL", "failed": "FAILED"}


def status(exit_code: int) -> str:
    """ "ok", "needs_approval" (a hold waits for a person: not a failure, the rest was
    applied) or "failed" (anything else: a rerun, or a fix, is needed)."""
    if exit_code == 0:
        return "ok"
    return "needs_approval" if exit_code == ExitCode.SAFETY_LIMIT else "failed"


def _text(summary: RunSummary) -> str:
    ended = STATUS_WORDS[status(summary.exit_code)]
    lines = [
        f"kprov {summary.command} {ended} on {summary.host} (profile {summary.profile}, "
        f"{summary.api_host}): exit {summary.exit_code}, {meaning(summary.exit_code)}.",
        f"Run {summary.run_id}: "
        + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.counts.items()) or
           "nothing done"),
    ]  # fmt: skip
    if summary.error:
        lines.append(f"Stopped by: {summary.error}")
    if summary.failures:
        lines.append("First failures:")
        lines.extend(f"- {line}" for line in summary.failures[:FIRST_FAILURES])
    held = sum(summary.counts.get(k, 0) for k in NOTICE_COUNTS)
    if summary.hold_id:
        hold = summary.hold_id
        lines.append(f"New hold {hold}: {summary.counts.get('withheld', 0)} item(s) withheld:")
        lines.extend(f"- {why}" for why in summary.guards)
        lines.append(
            f"Review: `kprov holds show {hold}`; apply exactly them: `kprov holds approve "
            f"{hold}`; or `kprov holds dismiss {hold}`"
        )
    elif held:
        shown = f"`kprov history {summary.run_id}`"
        lines.append(f"{held} item(s) held or withheld: {shown} lists them")
    if summary.resume and summary.exit_code not in (0, 6):
        lines.append(f"To rerun (it resumes): {summary.resume}")
    return "\n".join(_chat_safe(line) for line in lines)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _chat_safe(text: str) -> str:
    """Text from outside (an SIS id, a server's reason) is data: no control or direction
    characters, and Slack's markup characters escaped as Slack documents (&, <, >), so a
    roster cannot make the message ping a channel or hide a link."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------- metrics

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def metrics_text(summary: RunSummary) -> str:
    """The Prometheus text exposition format (version 0.0.4) of the last run, every sample
    labelled with the profile and the command; no timestamps (the textfile collector
    refuses them). Ends with a newline, as the format requires."""
    labels = {"profile": summary.profile, "command": summary.command}
    out: list[str] = []

    def gauge(name: str, help_text: str, samples: Sequence[tuple[Mapping[str, str], float]]):
        assert _METRIC.match(name)
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} gauge")
        for extra, value in samples:
            out.append(f"{name}{_labels({**labels, **extra})} {_value(value)}")

    gauge("kprov_last_run_start_timestamp_seconds", "When the last kprov run started (Unix time).",
          [({}, summary.started_at)])  # fmt: skip
    gauge("kprov_last_run_end_timestamp_seconds", "When the last kprov run ended (Unix time).",
          [({}, summary.ended_at)])  # fmt: skip
    gauge("kprov_last_run_duration_seconds", "How long the last kprov run took.",
          [({}, max(0.0, summary.ended_at - summary.started_at))])  # fmt: skip
    gauge("kprov_last_run_exit_code", "The exit code of the last kprov run (0: done).",
          [({}, summary.exit_code)])  # fmt: skip
    counts = {name: 0 for name in ALWAYS_COUNTED} | dict(summary.counts)
    gauge("kprov_last_run_items", "Items of the last kprov run, by outcome (kept lines too).",
          [({"outcome": k}, v) for k, v in sorted(counts.items())])  # fmt: skip
    gauge("kprov_last_run_requests", "Requests the last kprov run sent.",
          [({}, summary.requests)])  # fmt: skip
    gauge("kprov_last_run_rate_limited_responses", "429 answers the last kprov run received.",
          [({}, summary.rate_limited)])  # fmt: skip
    if summary.last_clean is not None:
        gauge("kprov_last_success_timestamp_seconds",
              "When a kprov run of this command last ended with exit 0 (Unix time).",
              [({}, summary.last_clean)])  # fmt: skip
    return "\n".join(out) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    parts = []
    for name, value in labels.items():
        assert _LABEL.match(name) and not name.startswith("__")
        text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append(f'{name}="{text}"')
    return "{" + ",".join(parts) + "}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _value(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
