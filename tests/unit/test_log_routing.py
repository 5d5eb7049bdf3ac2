"""Which app and deployment a line belongs to: cached, including "not ours", one lookup per key."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from devgem.logs.chunks import Target
from devgem.logs.entries import BUILD, RUN, LogLine, RejectedLogEntry
from devgem.logs.routing import LineRouter, deployment_of_revision

AT = datetime(2026, 11, 26, tzinfo=UTC)


def run_line(service: str, revision: str | None = None) -> LogLine:
    return LogLine("i", AT, "INFO", "x", RUN, "stdout", service=service, revision=revision)


def build_line(build_id: str) -> LogLine:
    return LogLine("i", AT, "INFO", "x", BUILD, "cloudbuild", build_id=build_id)


def test_the_deployment_comes_from_the_revision_name() -> None:
    assert deployment_of_revision("shop-ab12cd34", "shop-ab12cd34-0123456789ab") == "0123456789ab"
    assert deployment_of_revision("shop-ab12cd34", "shop-ab12cd34-00001-xyz") is None
    assert deployment_of_revision("shop-ab12cd34", "other-0123456789ab") is None
    assert deployment_of_revision("shop-ab12cd34", None) is None


def test_services_and_builds_are_looked_up_once() -> None:
    calls: list[str] = []

    def service(name: str) -> Target:
        calls.append(name)
        return Target("t1", "app000000001", None)

    def build(build_id: str) -> Target:
        calls.append(build_id)
        return Target("t1", "app000000001", "0123456789ab")

    router = LineRouter(service, build)
    for _ in range(3):
        assert router.route(run_line("shop", "shop-0123456789ab")) == Target("t1", "app000000001", "0123456789ab")
        assert router.route(build_line("b1")) == Target("t1", "app000000001", "0123456789ab")
    assert calls == ["shop", "b1"]


def test_what_is_not_ours_is_remembered_too() -> None:
    calls: list[str] = []

    def service(name: str) -> Target:
        calls.append(name)
        raise RejectedLogEntry("unmanaged-service", name)

    router = LineRouter(service, service)
    for _ in range(3):
        with pytest.raises(RejectedLogEntry) as caught:
            router.route(run_line("someone-else"))
        assert caught.value.reason == "unmanaged-service"
    assert calls == ["someone-else"]


def test_a_transient_failure_is_not_cached() -> None:
    attempts: list[int] = []

    def flaky(name: str) -> Target:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("Firestore unavailable")
        return Target("t1", "app000000001", None)

    router = LineRouter(flaky, flaky)
    with pytest.raises(ConnectionError):
        router.route(run_line("shop"))
    assert router.route(run_line("shop")).app_id == "app000000001"


def test_concurrent_misses_share_one_lookup() -> None:
    calls: list[str] = []
    looking_up, release = threading.Event(), threading.Event()
    all_asking = threading.Event()
    asking = threading.Barrier(20, action=all_asking.set)

    def slow(name: str) -> Target:
        calls.append(name)
        looking_up.set()
        assert release.wait(timeout=5)  # held in flight while the other threads ask
        return Target("t1", "app000000001", None)

    router = LineRouter(slow, slow)
    results: list[Target] = []

    def ask() -> None:
        asking.wait(timeout=5)
        results.append(router.route(run_line("shop")))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    assert all_asking.wait(timeout=5) and looking_up.wait(timeout=5)
    release.set()
    for t in threads:
        t.join(5)
    assert len(results) == 20 and calls == ["shop"]
