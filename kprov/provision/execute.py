"""Applying a plan: exactly its items, each sent once its dependencies are met, each bucket
spending its quota as soon as the server allows.

One dispatcher (the calling thread) owns every decision; workers only send and record.
- Dependencies, not phases: a learner is registered as soon as their account exists, their
  instance exists and it has an instructor whose token registers learners; account batches
  interleave the classes, so every instructor's token starts early.
- A task is handed to a worker only when its quota bucket admits a send now
  (``try_reserve``), so no worker sleeps on one bucket while another could send.
- Stopping (API down, credentials refused, Ctrl-C): nothing new is dispatched, what is in
  flight finishes and is recorded, everything else is "not attempted" — every item keeps a
  fate, and the rerun resumes.
"""

from __future__ import annotations

import queue
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest

from kprov.api.batch import MAX_BATCH
from kprov.errors import Interrupted, KprovError, StorageError
from kprov.provision import tasks
from kprov.provision.dispatch import Dispatcher, Task
from kprov.provision.plan import Action, Item, Plan
from kprov.provision.ports import (
    BATCH,
    INSTANCES,
    REGISTRATIONS,
    UNREGISTRATIONS,
    ProvisioningApi,
)
from kprov.provision.recorder import Recorder
from kprov.provision.result import Outcome, RunResult, Status
from kprov.provision.settling import Settling, Waits, blocked
from kprov.rosters.model import INSTRUCTOR
from kprov.state.local import LocalState


class Executor(Settling):
    """Applies one plan; the bookkeeping of what settles is ``Settling``'s."""

    def __init__(
        self,
        api: ProvisioningApi,
        state: LocalState,
        *,
        concurrency: int = 4,
        run_id: str = "",
        progress: Callable[[int], None] | None = None,
        on_wait: Callable[[str, float], None] | None = None,
        on_settle: Callable[[int, Outcome], None] | None = None,
        on_settled: Callable[[list[tuple[int, Outcome]]], None] | None = None,
        before_send: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """*progress* is told of each settled item; *on_wait* of a stretch in which every
        ready task waits for its quota bucket (what, seconds; 0 when it ends). *on_settle*
        is told of each outcome as it settles; *on_settled* of the outcomes settled since it
        was last told, in order, once per pass of the loop (the run ledger: a batch settles
        fifty, and one call for them costs far less than fifty). *before_send* is called in
        the worker, before a task's request is sent, with the highest plan index it carries:
        it returns once those items are in the run ledger, or raises (the run stops)."""
        self.api = api
        self.state = state
        self.recorder = Recorder(state)
        self.concurrency = max(1, concurrency)
        self.run_id = run_id
        self._progress = progress or (lambda n: None)
        self._on_wait = on_wait or (lambda what, seconds: None)
        self._quota_wait = ""  # the quota the display was told the run waits for
        # each outcome as it settles, in the dispatcher's thread, in order
        self._on_settle = on_settle
        self._on_settled = on_settled
        self._untold: list[tuple[int, Outcome]] = []  # settled since on_settled was told
        self._before_send = before_send
        self._clock = clock
        self._unshown = 0  # items settled since the display was last told

    # ----------------------------------------------------------------- set-up

    def run(self, plan: Plan) -> RunResult:
        started = self._clock()
        self.plan = plan
        self.items = plan.items
        self.result = RunResult(plan=plan, run_id=self.run_id, warnings=list(plan.warnings))
        self.outcomes: dict[int, Outcome] = {}
        self.account_of: dict[str, str] = {}  # external id -> account id made in this run
        self.instance_of: dict[str, str] = {}  # instance ref -> id made in this run
        self.failed_account: dict[str, Outcome] = {}
        self.failed_instance: dict[str, Outcome] = {}
        self.removed: set[tuple[str, str]] = set()
        self.waits = Waits()
        self.dispatcher = Dispatcher(self.api.try_reserve)
        self.stop: KprovError | None = None
        self.teacher = self._known_teachers()
        # instance ref -> instructor registrations of this plan not settled yet
        self.teachers_pending: dict[str, set[int]] = defaultdict(set)
        self.bug: Exception | None = None
        try:
            self._prepare()
            self._show_progress()
            self._loop()
        finally:  # what settled is told, even when the loop is cut short by an error
            self._show_progress()
        if self.stop is None and self.api.cancel.is_set():
            self.stop = Interrupted("interrupted: nothing more was sent")
        self._settle_rest()
        self._show_progress()
        if not isinstance(self.stop, StorageError):
            self.result.warnings.extend(self.recorder.unresolved_notice(self._unknown_ids))
        if self.bug is not None:
            raise self.bug
        self.result.outcomes = [self.outcomes[i] for i in range(len(self.items))]
        self.result.stopped_by = self.stop
        self.result.requests = self.api.requests_sent
        self.result.rate_limited = self.api.rate_limited
        self.result.requests_ok = self.api.requests_ok
        self.result.elapsed = self._clock() - started
        return self.result

    def _known_teachers(self) -> dict[str, str]:
        """Instance id -> the instructor whose token registers its learners (the smallest
        external id, so every run mints the same one token per instance). Instructors this
        plan removes (or turns into learners) are not candidates: their token may lose the
        right to register while the learners are sent."""
        active = self.state.registry.registration_index.active
        chosen: dict[str, str] = {}
        if not active:  # a first run, an accounts import: no instructor to choose from
            return chosen
        unregister = Action.UNREGISTER
        leaving = {
            (i.account_id, i.instance_id)
            for i in self.items
            if i.action is unregister and not i.guard
        }
        for record in self.state.registry.registration_index.instructors():
            if (record.account_id, record.instance_id) in leaving:
                continue
            if record.type == INSTRUCTOR and record.external_user_id:
                current = chosen.get(record.instance_id)
                if current is None or record.external_user_id < current:
                    chosen[record.instance_id] = record.external_user_id
        return chosen

    def _prepare(self) -> None:
        """Every item to its first place: settled (held, blocked), queued (instances,
        removals, account batches) or waiting (registrations). One pass over the plan, the
        common item (an account to create) first: a 50,000-account import is 50,000 items."""
        accounts: list[int] = []
        registrations: list[int] = []
        create_account, register = Action.CREATE_ACCOUNT, Action.REGISTER
        for index, item in enumerate(self.items):
            action = item.action
            if item.guard or action is Action.HOLD or action is Action.WAIT:
                self._settle(index, Outcome(item, Status.HELD, item.reason))  # a guard's: held
            elif action is create_account:
                accounts.append(index)
            elif action is register:
                registrations.append(index)
                if item.role == INSTRUCTOR:
                    self.teachers_pending[item.instance].add(index)
            elif action is Action.BLOCK:
                self._settle(index, Outcome(item, Status.FAILED, item.reason))
            elif action is Action.CREATE_INSTANCE:
                self._push(Task("instance", [index], (None, INSTANCES)))
            elif action is Action.UNREGISTER:
                self._push(Task("unregister", [index], (None, UNREGISTRATIONS)))
        for index in registrations:  # once every instructor's registration is known
            self._wait_or_ready(index)
        for batch in _batches(self.items, accounts):
            self._push(Task("batch", batch, (None, BATCH)))

    # ------------------------------------------------------------ dependencies

    def _wait_or_ready(self, index: int) -> None:
        """Queue a registration once what it needs exists; otherwise note what it waits for."""
        item = self.items[index]
        ext = item.external_id
        account_id = item.account_id or self.account_of.get(ext, "")
        if not account_id:
            failed = self.failed_account.get(ext)
            if failed is not None:
                self._settle(index, blocked(item, failed, "no account"))
            else:
                self.waits.account[ext].append(index)
            return
        instance_id = item.instance_id or self.instance_of.get(item.instance, "")
        if not instance_id:
            failed = self.failed_instance.get(item.instance)
            if failed is not None:
                self._settle(index, blocked(item, failed, "its instance was not created"))
            else:
                self.waits.instance[item.instance].append(index)
            return
        if item.role_change and (account_id, instance_id) not in self.removed:
            self.waits.removal[(account_id, instance_id)].append(index)
            return
        as_user: str | None = None
        if item.role != INSTRUCTOR:
            teacher = self.teacher.get(instance_id)
            if teacher is None and self.teachers_pending.get(item.instance):
                self.waits.teacher[item.instance].append(index)  # its instructor comes first
                return
            as_user = teacher  # None: the admin's token (the API may refuse; the reason says why)
        self._push(Task("register", [index], (as_user, REGISTRATIONS), as_user))

    def _release(self, waiting: Iterable[int]) -> None:
        for index in list(waiting):
            if index not in self.outcomes:
                self._wait_or_ready(index)

    # ------------------------------------------------------------- the loop

    def _push(self, task: Task) -> None:
        self.dispatcher.push(task)

    def _loop(self) -> None:
        done: queue.Queue[tuple[Task, tasks.TaskResult]] = queue.Queue()
        outstanding = 0
        # Tasks handed out at once: the in-flight ceiling (--concurrency) bounds what is sent,
        # and two more keep it full while the loop hands over the next. Twice as many threads
        # only queued at the ceiling and fought over the GIL (10,000 registrations: 1.3 ms of
        # CPU a request instead of 1.5).
        limit = self.concurrency + 2
        with ThreadPoolExecutor(limit, thread_name_prefix="kprov-work") as pool:
            while True:
                wake = None
                if self.stop is None and not self.api.cancel.is_set():
                    taken, wake = self.dispatcher.take(limit - outstanding)
                    for task, reservation in taken:
                        pool.submit(self._work, task, reservation, done)
                    outstanding += len(taken)
                    self._tell_wait(None if taken else wake)
                if outstanding == 0 and (
                    self.stop is not None or self.api.cancel.is_set() or wake is None
                ):
                    self._tell_wait(None)
                    return
                try:  # a long quota wait is taken in short naps, so Ctrl-C is seen at once
                    task, result = done.get(timeout=None if wake is None else min(wake, 0.2))
                except queue.Empty:
                    continue
                outstanding -= 1
                self._absorb(task, result)
                while True:  # absorb everything else that finished meanwhile
                    try:
                        task, result = done.get_nowait()
                    except queue.Empty:
                        break
                    outstanding -= 1
                    self._absorb(task, result)
                self._show_progress()

    def _show_progress(self) -> None:
        """Tell the display how many items settled since it was last told, and *on_settled*
        which (once per pass of the loop, not once per item: a batch settles fifty)."""
        if self._untold:
            untold, self._untold = self._untold, []
            if self._on_settled is not None:
                self._on_settled(untold)
        if self._unshown:
            shown, self._unshown = self._unshown, 0
            self._progress(shown)

    def _tell_wait(self, wake: float | None) -> None:
        """Tell the display which quota the run waits for, and until when; None: it sends."""
        bucket = self.dispatcher.waiting_on
        what = f"the {bucket[1]} quota" if wake is not None and bucket is not None else ""
        if self._quota_wait and self._quota_wait != what:
            self._on_wait(self._quota_wait, 0.0)
        self._quota_wait = what
        if what and wake is not None:
            self._on_wait(what, wake)

    def _work(
        self,
        task: Task,
        reservation: object,
        done: queue.Queue[tuple[Task, tasks.TaskResult]],
    ) -> None:
        try:
            with self.api.using(reservation):  # type: ignore[arg-type]
                if self._before_send is not None:
                    self._before_send(max(task.indices))  # its items are recorded first
                result = self._send(task)
        except KprovError as error:  # anything the task did not classify stops the run
            result = tasks.TaskResult([], stop=error)
        except Exception as bug:  # a bug: stop cleanly, then let it show after every fate
            self.bug = bug
            result = tasks.TaskResult([], stop=KprovError(f"internal error: {bug!r}"))
        done.put((task, result))

    def _send(self, task: Task) -> tasks.TaskResult:
        api, recorder, items = self.api, self.recorder, self.items
        if task.kind == "batch":
            return tasks.create_accounts(api, recorder, [(i, items[i]) for i in task.indices])
        index = task.indices[0]
        item = items[index]
        if task.kind == "recover":
            return tasks.recover_account(api, recorder, index, item)
        if task.kind == "instance":
            return tasks.create_instance(api, recorder, index, item)
        if task.kind == "unregister":
            return tasks.unregister(api, recorder, index, item)
        return tasks.register(
            api,
            recorder,
            index,
            item,
            account_id=item.account_id or self.account_of[item.external_id],
            instance_id=item.instance_id or self.instance_of[item.instance],
            as_user=task.as_user,
        )

    # ------------------------------------------------------------- outcomes

    def _absorb(self, task: Task, result: tasks.TaskResult) -> None:
        self.result.warnings.extend(result.warnings)
        if result.stop is not None and self.stop is None:
            self.stop = result.stop
            self.api.cancel.set()  # nothing queued in a worker may be sent after this
        if task.kind == "batch":
            self._settle_accounts(result.settled)
        else:
            for index, outcome in result.settled:
                self._settle(index, outcome)
        for index in result.recover:
            self._push(Task("recover", [index]))


def _batches(items: tuple[Item, ...], accounts: list[int]) -> list[list[int]]:
    """Account creations in batches of 50: instructors first, then learners interleaved
    across their classes, so every class (and its instructor's token) starts early."""
    ordered: list[int] = []
    by_class: dict[str, list[int]] = defaultdict(list)
    for i in accounts:
        item = items[i]
        if item.role == INSTRUCTOR:
            ordered.append(i)
        else:
            by_class[item.instance].append(i)
    columns = list(by_class.values())
    if len(columns) == 1:
        ordered.extend(columns[0])
    else:  # one of each class in turn: row by row across the columns
        ordered.extend(i for row in zip_longest(*columns) for i in row if i is not None)
    return [ordered[start : start + MAX_BATCH] for start in range(0, len(ordered), MAX_BATCH)]
