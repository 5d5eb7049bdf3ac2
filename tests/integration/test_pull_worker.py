"""The pull worker against the Pub/Sub emulator: what it acks, what comes back, and what it holds."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future

import pytest
from google.api_core.exceptions import DeadlineExceeded
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from devgem.entrypoints.pull_worker import Delivery, PullWorker
from devstack.stack import PROJECT, Stack
from tests.waiting import wait_for


class Subscription:
    def __init__(self, ack_deadline: int = 60) -> None:
        self.publisher, self.subscriber = PublisherClient(), SubscriberClient()
        suffix = uuid.uuid4().hex[:8]
        self.topic = self.publisher.topic_path(PROJECT, f"pull-test-{suffix}")
        self.path = self.subscriber.subscription_path(PROJECT, f"pull-test-{suffix}")
        self.publisher.create_topic(name=self.topic)
        self.subscriber.create_subscription(name=self.path, topic=self.topic, ack_deadline_seconds=ack_deadline)

    def delete(self) -> None:
        self.subscriber.delete_subscription(subscription=self.path)
        self.publisher.delete_topic(topic=self.topic)

    def publish(self, *payloads: str) -> None:
        for f in [self.publisher.publish(self.topic, p.encode()) for p in payloads]:
            f.result(timeout=30)

    def left(self, wait: float = 1.5) -> list[str]:
        """What a fresh pull still gets (within `wait` seconds), acked so the subscription ends empty."""
        got: list[str] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:  # the emulator's Pull waits for messages until its deadline
                r = self.subscriber.pull(
                    request={"subscription": self.path, "max_messages": 100}, timeout=left, retry=None
                )
            except DeadlineExceeded:
                break
            got += [m.message.data.decode() for m in r.received_messages]
            if r.received_messages:
                self.subscriber.acknowledge(
                    request={"subscription": self.path, "ack_ids": [m.ack_id for m in r.received_messages]}
                )
        return sorted(got)

    def pull_some(self, most: int) -> list[str]:
        """One Pull (waiting up to 2 s), held and not acked; returns the ack ids."""
        try:
            r = self.subscriber.pull(request={"subscription": self.path, "max_messages": most}, timeout=2, retry=None)
        except DeadlineExceeded:
            return []
        return [m.ack_id for m in r.received_messages]

    def take(self, count: int, what: str) -> list[str]:
        """Pull and hold `count` messages: proof that no one else holds them."""
        ack_ids: list[str] = []

        def enough() -> bool:
            ack_ids.extend(self.pull_some(count - len(ack_ids)))
            return len(ack_ids) >= count

        wait_for(enough, what)
        return ack_ids

    def give_back(self, ack_ids: list[str]) -> None:
        self.subscriber.modify_ack_deadline(
            request={"subscription": self.path, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
        )


@pytest.fixture()
def sub(stack: Stack) -> Iterator[Subscription]:
    s = Subscription()
    yield s
    s.delete()


def settled(value: str | None = None, error: Exception | None = None) -> Future[str]:
    f: Future[str] = Future()
    f.set_exception(error) if error else f.set_result(value or "ok")
    return f


class Gate:
    """A handler whose futures stay unsettled (the lines "being written") until `release`."""

    def __init__(self) -> None:
        self.held: list[Future[str]] = []
        self._released = threading.Event()

    def __call__(self, payloads: Sequence[Delivery]) -> list[Future[str]]:
        if self._released.is_set():
            return [settled() for _ in payloads]
        futures: list[Future[str]] = [Future() for _ in payloads]
        self.held.extend(futures)
        return futures

    def release(self) -> None:
        self._released.set()
        for f in self.held:
            f.set_result("ok")


def running(worker: PullWorker) -> threading.Thread:
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t


def test_settled_messages_are_acked_and_failed_ones_come_back_at_once(sub: Subscription) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def handle(payloads: Sequence[Delivery]) -> list[Future[str]]:
        out = []
        for p in payloads:
            text = p.data.decode()
            with lock:
                first = text not in seen
                seen.append(text)
            out.append(settled(error=RuntimeError("Firestore is down")) if text == "flaky" and first else settled())
        return out

    worker = PullWorker(sub.path, handle)
    thread = running(worker)
    sub.publish("a", "b", "flaky", "c")
    wait_for(lambda: seen.count("flaky") == 2, "the nacked message, redelivered well before the 60 s deadline")
    wait_for(lambda: worker.acked == 4, "four acks")
    worker.stop.set()
    thread.join(20)
    assert worker.nacked == 1
    assert sorted(seen) == ["a", "b", "c", "flaky", "flaky"]
    assert sub.left() == []  # all acked: nothing is redelivered


def test_a_handler_that_raises_nacks_its_whole_batch(sub: Subscription) -> None:
    calls: list[int] = []

    def handle(payloads: Sequence[Delivery]) -> list[Future[str]]:
        calls.append(len(payloads))
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return [settled() for _ in payloads]

    worker = PullWorker(sub.path, handle)
    sub.publish("x", "y")
    thread = running(worker)
    wait_for(lambda: worker.acked == 2, "two acks")
    worker.stop.set()
    thread.join(20)
    assert worker.nacked == sum(calls[:1]) and sub.left() == []


def test_stopping_nacks_what_is_still_unsettled_so_it_is_not_held_until_the_deadline(sub: Subscription) -> None:
    gate = Gate()  # never released
    worker = PullWorker(sub.path, gate, drain_timeout=0.5)
    thread = running(worker)
    sub.publish("held-1", "held-2")
    wait_for(lambda: len(gate.held) == 2, "both messages held")
    worker.stop.set()
    thread.join(20)
    assert worker.nacked == 2 and worker.acked == 0
    assert sub.left() == ["held-1", "held-2"]  # back at once, not after the 60 s ack deadline


def test_it_holds_at_most_max_outstanding_unsettled_messages(sub: Subscription) -> None:
    gate = Gate()
    worker = PullWorker(sub.path, gate, max_outstanding=5, max_messages=3)
    sub.publish(*[f"m{i}" for i in range(12)])
    thread = running(worker)
    wait_for(lambda: len(gate.held) == 5, "five messages held")
    # The other seven are still there to be pulled, so the worker did not take them: flow control.
    ours = sub.take(7, "the seven messages the worker must leave while five are unsettled")
    assert len(gate.held) == 5
    sub.give_back(ours)
    gate.release()
    wait_for(lambda: worker.acked == 12, "all twelve acked")
    worker.stop.set()
    thread.join(20)
    assert sub.left() == []


def test_large_messages_make_pulls_smaller_so_memory_stays_bounded(sub: Subscription) -> None:
    gate = Gate()
    worker = PullWorker(sub.path, gate, max_outstanding_bytes=1024 * 1024)
    sub.publish(*[f"{i:03d}" + "x" * 100 * 1024 for i in range(30)])  # 30 x 100 KiB
    thread = running(worker)
    wait_for(lambda: len(gate.held) > 0, "the first messages held")
    # Take what the worker leaves: once the worker holds all it may, the rest are ours to pull.
    ours: list[str] = []

    def all_held() -> bool:
        if len(ours) + len(gate.held) < 30:
            ours.extend(sub.pull_some(30))
        return len(ours) + len(gate.held) == 30

    wait_for(all_held, "all thirty held, by the worker or by the test")
    assert 0 < len(gate.held) <= 10  # at most 1 MiB held, though each Pull may ask for 1,000
    sub.give_back(ours)
    gate.release()
    wait_for(lambda: worker.acked == 30, "all thirty acked")
    worker.stop.set()
    thread.join(20)
    assert sub.left() == []


def test_what_it_holds_stays_leased_past_the_ack_deadline(stack: Stack) -> None:
    """A commit slower than the subscription's 10 s deadline is not redelivered meanwhile."""
    sub = Subscription(ack_deadline=10)
    twin = sub.subscriber.subscription_path(PROJECT, sub.path.rsplit("/", 1)[1] + "-unleased")
    sub.subscriber.create_subscription(name=twin, topic=sub.topic, ack_deadline_seconds=12)
    calls: list[str] = []
    slow: Future[str] = Future()

    def handle(payloads: Sequence[Delivery]) -> list[Future[str]]:
        calls.extend(p.data.decode() for p in payloads)
        return [slow for _ in payloads]

    worker = PullWorker(sub.path, handle, ack_deadline=10)
    thread = running(worker)
    try:
        sub.publish("slow")
        wait_for(lambda: calls == ["slow"], "the message handed to the handler")
        # The same message on a twin subscription, pulled after ours and never leased, comes back once
        # its 12 s deadline passes: ours (10 s) would have been redelivered before that had the worker
        # not kept it leased.
        wait_for(lambda: unleased_came_back(sub.subscriber, twin), "the twin's copy")
        wait_for(lambda: unleased_came_back(sub.subscriber, twin), "the twin's redelivery", timeout=60)
        assert calls == ["slow"], "redelivered while still held"
        slow.set_result("ok")
        wait_for(lambda: worker.acked == 1, "the ack once the slow commit ends")
    finally:
        worker.stop.set()
        thread.join(20)
        sub.subscriber.delete_subscription(subscription=twin)
        sub.delete()


def unleased_came_back(subscriber: SubscriberClient, subscription: str) -> bool:
    try:
        r = subscriber.pull(request={"subscription": subscription, "max_messages": 1}, timeout=2, retry=None)
    except DeadlineExceeded:
        return False
    return bool(r.received_messages)
