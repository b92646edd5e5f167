"""A strict reader of the Prometheus text exposition format (0.0.4), for tests.

Written from the format's documentation (prometheus.io, "Exposition formats": text format
details) rather than taken from prometheus_client, so that kprov's writer is checked by an
independent reading: HELP and TYPE at most once per metric and before its samples, a
metric's samples grouped together, names and label names from their character sets, label
values with only \\\\, \\" and \\n escaped, values as Go floats, and, for node_exporter's
textfile collector, no timestamps; the text ends with a line feed.
"""

from __future__ import annotations

import math
import re

METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
_SAMPLE = re.compile(rf"^({METRIC})(?:\{{(.*)\}})?[ \t]+(\S+)(?:[ \t]+(\S+))?$")
_PAIR = re.compile(rf'[ \t]*({LABEL})[ \t]*=[ \t]*"((?:[^"\\\n]|\\[\\"n])*)"[ \t]*(,|$)')

Samples = dict[str, list[tuple[dict[str, str], float]]]


class FormatError(AssertionError):
    pass


def parse(text: str) -> tuple[Samples, dict[str, str], dict[str, str]]:
    """(samples by metric, TYPE by metric, HELP by metric); FormatError on any deviation."""
    if not text.endswith("\n"):
        raise FormatError("the last line must end with a line feed")
    samples: Samples = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    current = ""
    for number, line in enumerate(text.split("\n")[:-1], 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped[1:].strip().split(None, 2)
            if parts[:1] == ["HELP"]:
                name = parts[1]
                if name in helps or not re.fullmatch(METRIC, name):
                    raise FormatError(f"line {number}: HELP twice or a bad name")
                helps[name] = _unescape(parts[2] if len(parts) > 2 else "", help_text=True)
            elif parts[:1] == ["TYPE"]:
                name, kind = parts[1], parts[2] if len(parts) > 2 else ""
                if name in types or kind not in TYPES or name in samples:
                    raise FormatError(f"line {number}: TYPE twice, unknown, or after samples")
                types[name] = kind
            continue
        match = _SAMPLE.match(stripped)
        if not match:
            raise FormatError(f"line {number}: not a sample: {line!r}")
        name, labels_text, value, timestamp = match.groups()
        if timestamp is not None:
            raise FormatError(f"line {number}: a timestamp (the textfile collector refuses it)")
        if name != current and name in samples:
            raise FormatError(f"line {number}: samples of {name} are not grouped together")
        current = name
        labels = _labels(labels_text or "", number)
        if any(labels == seen for seen, _v in samples.get(name, [])):
            raise FormatError(f"line {number}: the same labels twice for {name}")
        samples.setdefault(name, []).append((labels, _float(value, number)))
    return samples, types, helps


def _labels(text: str, number: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if not match or match.end() == position:
            raise FormatError(f"line {number}: bad labels {text!r}")
        name, value, _comma = match.groups()
        if name in labels or name.startswith("__"):
            raise FormatError(f"line {number}: label {name} twice or reserved")
        labels[name] = _unescape(value)
        position = match.end()
    return labels


def _unescape(text: str, *, help_text: bool = False) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        if following == "n":
            out.append("\n")
        elif following == "\\" or (following == '"' and not help_text):
            out.append(following)
        else:
            out.append("\\" + following)  # kept as written (the format says so for HELP)
    return "".join(out)


def _float(text: str, number: int) -> float:
    if text in ("NaN", "+Inf", "-Inf"):
        return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}[text]
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise FormatError(f"line {number}: bad value {text!r}")
    return float(text)
