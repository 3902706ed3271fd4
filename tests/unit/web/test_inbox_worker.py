"""The service's inbox worker: works at start, when woken, on its poll, once more at stop,
and survives a failing pass."""

from __future__ import annotations

import threading
import time

from web.intake import InboxWorker


def test_the_worker_works_when_woken_and_once_more_at_stop() -> None:
    calls: list[float] = []
    called = threading.Event()

    def work() -> None:
        calls.append(time.monotonic())
        called.set()
        if len(calls) == 2:
            raise RuntimeError("the database went away")  # logged; the worker carries on

    worker = InboxWorker(work, poll_seconds=60)
    worker.start()
    assert called.wait(5)  # the backlog found at start-up
    for expected in (2, 3):
        called.clear()
        worker.wake()
        assert called.wait(5)
        assert len(calls) == expected
    worker.stop()
    assert not worker.running
    assert len(calls) == 4  # the last pass after stop


def test_the_worker_polls_without_being_woken() -> None:
    calls: list[int] = []
    worker = InboxWorker(lambda: calls.append(1), poll_seconds=0.05)
    worker.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    worker.stop()
