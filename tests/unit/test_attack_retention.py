"""Adversary (issues 19 and 20): retention must not forget what the guards compare with.

The source guard compares tonight's export with the last one *applied* (a held export never
becomes the reference). Retention forgets runs older than `history_days` -- and with a run,
its fingerprints. A source not read for longer than that (a summer break, when districts
change SIS and re-key), or held that long (a hold nobody decides over a holiday), then has no
reference: its next export reads as the first one, which is never judged, and a re-keyed
export creates every student again.
"""

from __future__ import annotations

from pathlib import Path

from kprov.state.ledger import Ledger
from kprov.state.ledger_guards import reference_rows
from tests.ledger_rows import T0, start

DAY = 86_400.0
SOURCE = "/srv/sis/students.csv"


def fingerprint(ledger: Ledger, run_id: str, *, applied: bool, source: str = SOURCE) -> None:
    key = ledger.db.execute("SELECT id FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
    ledger.db.execute(
        "INSERT INTO source_fingerprints (run, source, applied, delta, fingerprint, sample) "
        "VALUES (?, ?, ?, 0, ?, x'01000000')",
        (key, source, int(applied), f'{{"source": "{source}", "rows": 1, "ids": 1}}'),
    )


def test_the_last_applied_export_of_a_source_outlives_retention(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-june", T0), [])  # the last night before the summer
    fingerprint(ledger, "kprov-june", applied=True)
    ledger.begin_run(start("kprov-june-other", T0 + 1), [])
    fingerprint(ledger, "kprov-june-other", applied=True, source="/srv/sis/old.csv")
    ledger.begin_run(start("kprov-july", T0 + 30 * DAY), [])  # held: never the reference
    fingerprint(ledger, "kprov-july", applied=False)
    ledger.begin_run(start("kprov-sept", T0 + 90 * DAY), [])

    gone = ledger.prune(T0 + 60 * DAY, keep="kprov-sept")  # history_days: 30
    assert gone == 1  # the held July night; June keeps the references of both sources
    assert set(reference_rows(ledger, [SOURCE, "/srv/sis/old.csv"])) == {
        SOURCE,
        "/srv/sis/old.csv",
    }

    ledger.begin_run(start("kprov-oct", T0 + 120 * DAY), [])  # a newer applied export
    fingerprint(ledger, "kprov-oct", applied=True)
    ledger.prune(T0 + 100 * DAY, keep="kprov-oct")
    runs = {row[0] for row in ledger.db.execute("SELECT run_id FROM runs")}
    assert runs == {"kprov-june-other", "kprov-oct"}  # June's students.csv is superseded
