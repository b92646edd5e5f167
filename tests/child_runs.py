"""kprov in a child process, as cron runs it: its environment, and a kill -9 at a chosen
moment on the server's side."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

from tests.conftest import Sandbox


def kprov_env(box: Sandbox, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
    env.update(box.env())
    env["KPROV_CONFIG"] = str(home / "config.yaml")
    env["KPROV_STATE_DIR"] = str(home / "state")
    env["KPROV_RETRY_BASE_DELAY"] = "0.01"
    env["KPROV_RATE_LIMITS"] = "off"
    return env


def kill_on(box: Sandbox, method: str, number: int, holder: dict[str, Any]) -> None:
    """SIGKILL the client after the server applied call N of *method*, before it answers."""
    original = getattr(box.store, method)
    count = {"n": 0}
    lock = threading.Lock()

    def wrapped(who: Any, body: Any) -> Any:
        answer = original(who, body)
        with lock:
            count["n"] += 1
            if count["n"] == number and holder.get("process"):
                os.kill(holder["process"].pid, signal.SIGKILL)
        return answer

    setattr(box.store, method, wrapped)
