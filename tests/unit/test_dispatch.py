"""The dispatcher: work that unblocks others first, other buckets in turn, reserved sends."""

from __future__ import annotations

from kprov.provision.dispatch import Dispatcher, Task


def task(bucket: tuple[str | None, str] | None, n: int = 0) -> Task:
    return Task("register", [n], bucket, bucket[0] if bucket else None)


def test_batches_go_first_then_instructors_buckets_take_turns() -> None:
    dispatcher = Dispatcher(lambda who, endpoint: ("ok", who, endpoint))
    for n in range(3):
        for teacher in ("t1", "t2", "t3"):
            dispatcher.push(task((teacher, "POST /registrations"), n))
    dispatcher.push(task((None, "POST /batch")))
    taken, wake = dispatcher.take(4)
    assert wake == 0.01  # more work, no room: look again soon
    assert [t.bucket for t, _r in taken] == [
        (None, "POST /batch"),
        ("t1", "POST /registrations"),
        ("t2", "POST /registrations"),
        ("t3", "POST /registrations"),
    ]
    taken, _wake = dispatcher.take(2)
    assert [t.bucket[0] for t, _r in taken if t.bucket] == ["t1", "t2"]
    taken, wake = dispatcher.take(10)
    assert [t.bucket[0] for t, _r in taken if t.bucket] == ["t3", "t1", "t2", "t3"]
    assert (dispatcher.queued, wake) == (0, None)


def test_a_bucket_that_must_wait_holds_no_one_and_says_when() -> None:
    waits = {"POST /batch": 2.5}
    dispatcher = Dispatcher(lambda who, endpoint: waits.get(endpoint, "reserved"))
    dispatcher.push(task((None, "POST /batch")))
    dispatcher.push(task(("t1", "POST /registrations")))
    taken, wake = dispatcher.take(5)
    assert [(t.bucket, r) for t, r in taken] == [(("t1", "POST /registrations"), "reserved")]
    assert wake == 2.5 and dispatcher.queued == 1
    waits.clear()
    taken, wake = dispatcher.take(5)
    assert [t.bucket for t, _r in taken] == [(None, "POST /batch")] and wake is None
