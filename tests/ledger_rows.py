"""Rows of the run ledger written by hand: a run's start and its items."""

from __future__ import annotations

from kprov.state.ledger import RunStart

T0 = 1_800_000_000.0


def start(run_id: str, at: float = T0, **extra: object) -> RunStart:
    return RunStart(run_id, "sync", "apply", at, "ops", "sis-01", 42, "0.3.0", "prod",
                    "https://api.example.test/v0", '["sync", "s.yaml"]', **extra)  # type: ignore[arg-type]  # fmt: skip


def item(seq: int, person: str, *, sis: str = "", instance: str = "alg1-p2") -> tuple[object, ...]:
    return (seq, "register", person, sis, "learner", instance, "Algebra I P2", "", "", "",
            "alg1-p2.csv", seq + 2, "not registered", "", None, 0, "")  # fmt: skip
