"""A secret value that never shows itself: its own module, so every layer can hold one
(the API client, the credential resolution) without importing the others."""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks with locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<hidden>')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)
