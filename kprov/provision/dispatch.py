"""Which ready task goes next: one queue per quota bucket, taking turns, each send reserved
before a worker gets it (so no worker sleeps on a bucket another could use)."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from kprov.provision.ports import BATCH, INSTANCES, REGISTRATIONS, UNREGISTRATIONS

Bucket = tuple[str | None, str]  # (whose token, endpoint); see kprov.api.pacing
# Buckets whose work unblocks other work: served first, in this order (None: not reserved).
FIRST: tuple[Bucket | None, ...] = (
    None,
    (None, BATCH),
    (None, INSTANCES),
    (None, REGISTRATIONS),
    (None, UNREGISTRATIONS),
)


@dataclass
class Task:
    kind: str  # batch | recover | instance | register | unregister
    indices: list[int]  # the plan items it settles
    bucket: Bucket | None = None  # None: sent without a reservation
    as_user: str | None = None


class Dispatcher:
    """Ready tasks by bucket. ``take`` hands out what may be sent now, fairly: the FIRST
    buckets one each per pass, then the others (learners under each instructor's token) in
    turn. A pass costs nothing for buckets with nothing queued."""

    def __init__(self, reserve: Callable[[str | None, str], object]) -> None:
        self._reserve = reserve  # Reservation, or the seconds until the bucket admits one
        self._ready: dict[Bucket | None, deque[Task]] = defaultdict(deque)
        self._ring: deque[Bucket | None] = deque()  # other buckets with queued work
        self.queued = 0
        self.waiting_on: Bucket | None = None  # the bucket whose wait ``take`` last returned

    def push(self, task: Task) -> None:
        queue_ = self._ready[task.bucket]
        if not queue_ and task.bucket not in FIRST:
            self._ring.append(task.bucket)
        queue_.append(task)
        self.queued += 1

    def take(self, room: int) -> tuple[list[tuple[Task, object]], float | None]:
        """Up to *room* (task, reservation) pairs that may be sent now; and how long until a
        bucket holding work admits a send (None when nothing is waiting)."""
        taken: list[tuple[Task, object]] = []
        wake: float | None = None
        self.waiting_on = None

        def take_one(bucket: Bucket | None) -> bool:
            nonlocal wake
            reservation: object = None
            if bucket is not None:
                reservation = self._reserve(*bucket)
                if isinstance(reservation, float | int):
                    if wake is None or reservation < wake:
                        wake, self.waiting_on = reservation, bucket
                    return False
            taken.append((self._ready[bucket].popleft(), reservation))
            self.queued -= 1
            return True

        while len(taken) < room and self.queued:
            progressed = False
            for bucket in FIRST:  # one each per pass, before any other bucket's turn
                if len(taken) < room and self._ready.get(bucket) and take_one(bucket):
                    progressed = True
            for _turn in range(len(self._ring)):
                if len(taken) >= room:
                    break
                bucket = self._ring[0]
                progressed = take_one(bucket) or progressed
                if not self._ready[bucket]:
                    self._ring.popleft()  # nothing left in it: out of the ring
                else:
                    self._ring.rotate(-1)  # its turn is over
            if not progressed:
                break
        if wake is None and self.queued:
            wake = 0.01  # work waits for room, not for a bucket: look again soon
        return taken, wake
