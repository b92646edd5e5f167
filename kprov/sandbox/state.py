"""The sandbox's state: accounts, instances, registrations, and the journal that keeps them.

All mutations go through one lock and are appended to a JSON-lines journal when a state file
is given, so a rehearsed cron run sees yesterday's accounts, instances and registrations.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import IO, Any


class SandboxState:
    """The partner's data, changed only through journalled events (``_apply``)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, dict[str, Any]] = {}
        self.by_external: dict[str, str] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self.registrations: dict[str, dict[str, Any]] = {}
        self.active_registration: dict[tuple[str, str], str] = {}
        self.per_instance: Counter[str] = Counter()
        self.per_account: Counter[str] = Counter()
        self._journal: IO[str] | None = None

    def open_journal(self, state_path: Path | None) -> None:
        """Replay *state_path* if it exists, then append every change to it."""
        if state_path is not None:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            if state_path.exists():
                self._replay(state_path)
            self._journal = state_path.open("a", encoding="utf-8")

    # ------------------------------------------------------------ journal

    def _replay(self, path: Path) -> None:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.endswith("\n"):
                    self._mutate(json.loads(line))

    def _apply(self, event: dict[str, Any]) -> None:
        self._mutate(event)
        if self._journal is not None:
            self._journal.write(json.dumps(event) + "\n")
            self._journal.flush()

    def _mutate(self, event: dict[str, Any]) -> None:
        op = event["op"]
        if op == "account":
            self.accounts[event["id"]] = {
                "id": event["id"],
                "external_user_id": event["ext"],
                "active": True,
            }
            self.by_external[event["ext"]] = event["id"]
        elif op == "disable_account":
            self.accounts[event["id"]]["active"] = False
        elif op == "instance":
            self.instances[event["id"]] = {**event["body"], "id": event["id"], "active": True}
        elif op == "delete_instance":
            self.instances[event["id"]]["active"] = False
            for reg in self.registrations.values():
                if reg["learning_instance_id"] == event["id"] and not reg["invalid"]:
                    reg["invalid"] = True
                    self._forget_active(reg)
        elif op == "registration":
            reg = {**event["body"], "id": event["id"], "invalid": False}
            self.registrations[event["id"]] = reg
            self.active_registration[(reg["account_id"], reg["learning_instance_id"])] = event["id"]
            self.per_instance[reg["learning_instance_id"]] += 1
            self.per_account[reg["account_id"]] += 1
        elif op == "delete_registration":
            reg = self.registrations.pop(event["id"])
            if not reg["invalid"]:
                self._forget_active(reg)

    def _forget_active(self, reg: dict[str, Any]) -> None:
        key = (reg["account_id"], reg["learning_instance_id"])
        if self.active_registration.pop(key, None) is not None:
            self.per_instance[key[1]] -= 1
            self.per_account[key[0]] -= 1

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
