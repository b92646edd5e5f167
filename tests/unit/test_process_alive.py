"""`kprov history` calls an unfinished run *running* only while its process lives: one killed
and not yet reaped by its parent (a zombie) is dead, as one that is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from kprov.state.lock import process_alive


def test_a_killed_process_is_dead_even_before_its_parent_reaps_it() -> None:
    assert process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(200):  # until the kernel has made it a zombie (never reaped here)
            if not process_alive(child.pid):
                break
            time.sleep(0.01)
        assert not process_alive(child.pid)
        assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie till now
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)
