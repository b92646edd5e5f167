"""Group commit: results that arrive together are made durable with one fsync.

N worker threads each record single rows (as the executor records one result at a time) into
a mapping journal whose fsync takes an extra 5 ms (a slow disk, or a network filesystem).
Measured twice: with group commit (kprov's journal), and with one write and one fsync per row
(the journal serialised per call, as before). Prints one line: rows/s of each and the ratio.

    python bench/group_commit.py [--threads 16] [--rows 1600] [--fsync-ms 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kprov.state.mapping import MappingEntry, MappingJournal

UUID = "0b8e1f3c-1111-4222-8333-444455556666"


class OneFsyncPerRow(MappingJournal):
    """The journal as it was: each call written and fsync'ed alone, one caller at a time."""

    _serial = threading.Lock()

    def append_rows(self, rows: Sequence[Sequence[str]]) -> None:
        with self._serial:
            super().append_rows(rows)


def run(journal: MappingJournal, threads: int, rows: int) -> float:
    """Rows per second when *threads* workers each append rows/threads single rows."""
    per_thread = rows // threads

    def worker(t: int) -> None:
        for i in range(per_thread):
            journal.append([MappingEntry(f"w{t}-{i}", UUID, "2026-09-01T02:00:00Z")])

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    journal.close()
    written = sum(1 for _ in MappingJournal(journal.path).entries())
    assert written == per_thread * threads, (written, per_thread * threads)
    return written / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1600)
    parser.add_argument("--fsync-ms", type=float, default=5.0)
    args = parser.parse_args()
    real_fsync, calls = os.fsync, [0]

    def slow_fsync(fd: int) -> None:
        calls[0] += 1
        time.sleep(args.fsync_ms / 1000)
        real_fsync(fd)

    os.fsync = slow_fsync
    with tempfile.TemporaryDirectory(prefix="kprov-gc-") as scratch:
        folder = Path(scratch)
        calls[0] = 0
        grouped = run(MappingJournal(folder / "grouped.csv"), args.threads, args.rows)
        grouped_fsyncs = calls[0]
        calls[0] = 0
        single = run(OneFsyncPerRow(folder / "single.csv"), args.threads, args.rows)
        single_fsyncs = calls[0]
    ratio = grouped / single
    print(
        f"group_commit threads={args.threads} rows={args.rows} fsync=+{args.fsync_ms:g}ms: "
        f"grouped={grouped:,.0f} rows/s ({grouped_fsyncs} fsyncs) one-fsync-per-row="
        f"{single:,.0f} rows/s ({single_fsyncs} fsyncs) ratio={ratio:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
