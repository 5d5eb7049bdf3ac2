"""Permanently bad messages are recorded in rejectedEvents and acknowledged: never retried forever,
never crashing a function, never changing state."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest

from devgem import clock, topology
from devgem.adapters import collections, pubsub, store
from devgem.adapters.firestore_client import client
from devstack.stack import Stack


def _rejections(marker: str) -> list[dict[str, object]]:
    docs = client().collection(collections.REJECTED_EVENTS).stream()
    return [d.to_dict() or {} for d in docs if marker in str((d.to_dict() or {}).get("raw", ""))]


def _wait_rejected(marker: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _rejections(marker)
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no rejectedEvents record for {marker}")


def _marker() -> str:
    return uuid.uuid4().hex


CASES = [
    (topology.DEPLOY_REQUESTED, lambda m: f"not json {m}".encode(), {}, "not JSON"),
    (topology.DEPLOY_REQUESTED, lambda m: json.dumps([m]).encode(), {}, "not an object"),
    (topology.DEPLOY_REQUESTED, lambda m: json.dumps({"note": m}).encode(), {}, "no deploymentId"),
    (
        topology.DEPLOY_REQUESTED,
        lambda m: json.dumps({"deploymentId": "../../etc", "tenantId": "t", "note": m}).encode(),
        {},
        "not a valid id",
    ),
    (
        topology.DEPLOY_REQUESTED,
        lambda m: json.dumps({"deploymentId": "ffffffffffff", "tenantId": "t", "note": m}).encode(),
        {},
        "does not exist",
    ),
    (topology.CLOUD_BUILDS, lambda m: json.dumps({"id": m}).encode(), {}, "no valid buildId/status"),
    (topology.CLOUD_BUILDS, lambda m: json.dumps({"id": m}).encode(), {"buildId": "b", "status": "EXPLODED"}, "status"),
    (topology.CLOUD_BUILDS, lambda m: f"garbage {m}".encode(), {"buildId": "b", "status": "SUCCESS"}, "not a Build"),
    (
        topology.CLOUD_BUILDS,
        lambda m: json.dumps({"id": m, "tags": ["devgem", "dep-ffffffffffff"]}).encode(),
        {"buildId": "b", "status": "SUCCESS"},
        "does not exist",
    ),
]


@pytest.mark.parametrize(("topic", "make", "attributes", "reason"), CASES)
def test_a_bad_message_is_recorded_once_and_acknowledged(
    stack: Stack,
    topic: str,
    make: Callable[[str], bytes],
    attributes: dict[str, str],
    reason: str,
) -> None:
    marker = _marker()
    pubsub.publish_raw(topic, make(marker), **attributes)
    record = _wait_rejected(marker)
    assert reason in str(record["reason"])
    time.sleep(2)  # a nacked message would be redelivered within a second or two and recorded again
    assert len(_rejections(marker)) == 1


def test_an_oversized_message_is_recorded_truncated(stack: Stack) -> None:
    marker = _marker()
    pubsub.publish_raw(topology.DEPLOY_REQUESTED, (marker + "x" * 300_000).encode())
    record = _wait_rejected(marker)
    assert record["rawBytes"] and len(str(record["raw"])) <= 10_000


def test_a_forged_tenant_cannot_start_another_tenants_deployment(stack: Stack) -> None:
    deployment_id = clock.new_id()
    ref = store.deployment_ref(client(), deployment_id)
    ref.set({"tenantId": "victim", "appId": "a", "status": "queued", "createdAt": clock.now()})
    marker = _marker()
    forged = {"deploymentId": deployment_id, "tenantId": "attacker", "note": marker}
    pubsub.publish(topology.DEPLOY_REQUESTED, forged)
    record = _wait_rejected(marker)
    assert "does not belong" in str(record["reason"])
    assert (ref.get().to_dict() or {})["status"] == "queued"


def test_a_build_that_is_not_devgems_is_acknowledged_and_ignored(stack: Stack) -> None:
    marker = _marker()
    pubsub.publish_raw(
        topology.CLOUD_BUILDS, json.dumps({"id": marker, "tags": ["other"]}).encode(), buildId=marker, status="SUCCESS"
    )
    deadline = time.monotonic() + 30
    log = stack.children["build_finished"].log_path
    while "ignored: not a Devgem build" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "build_finished never handled the message"
        time.sleep(0.2)
    assert _rejections(marker) == []
