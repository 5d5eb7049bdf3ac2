"""The log_entry worker pulling `log-entry`, the api's history and the CLI, against the emulators.

LogEntry JSON is published to `log-entry` here, as the Log Router sink (and localcloud) would, which is
also how the bad inputs get in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore import FieldFilter

from devgem import clock, topology
from devgem.adapters import collections, pubsub
from devgem.adapters.firestore_client import client
from devgem.logs.chunks import ChunkIds, Target, chunk_docs, lines_of, logs_ref
from devgem.logs.entries import LogLine
from devgem.logs.follow import LogFollower, floor_before
from devgem.logs.writer import REJECTIONS
from devstack.api_client import Api
from devstack.stack import Stack
from tests.waiting import wait_for

DEVGEM = Path(sys.executable).parent / "devgem"
REVISION_SUFFIX = "-0123456789ab"


def entry(service: str, insert_id: str, text: str, severity: str = "DEFAULT", **extra: Any) -> dict[str, Any]:
    return {
        "insertId": insert_id,
        "logName": "projects/devgem-local/logs/run.googleapis.com%2Fstdout",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": service, "revision_name": service + REVISION_SUFFIX, "location": "l"},
        },
        "timestamp": "2026-11-26T10:00:00.000000001Z",
        "severity": severity,
        "textPayload": text,
        **extra,
    }


def publish(data: dict[str, Any] | bytes) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    pubsub.publish_raw(topology.LOG_ENTRY, raw)


def stored_lines(app_id: str) -> list[dict[str, Any]]:
    return [line for snap in logs_ref(client(), app_id).stream() for line in lines_of(snap.to_dict() or {})]


STOPPED = re.compile(r"stopped: (\d+) acked, (\d+) nacked")  # pull_worker.serve's last line


def restart_log_worker(stack: Stack, kill: bool = False) -> tuple[int, int] | None:
    """Restart the log_entry worker; return the stopped instance's (acked, nacked), None after SIGKILL.

    A worker stopped with SIGTERM settles all it holds before it reports, so its count is proof of
    what Pub/Sub will and will not deliver again."""
    stopped = stack.children["log_entry"]
    stack.restart_worker("log_entry", kill=kill)
    if kill:
        return None
    found = STOPPED.search(stopped.output())
    assert found, f"the stopped worker did not report its count:\n{stopped.tail()}"
    return int(found[1]), int(found[2])


@pytest.fixture()
def log_worker(stack: Stack) -> Iterator[Stack]:
    """A fresh log_entry worker, so the count it reports when stopped covers this test alone."""
    restart_log_worker(stack)
    yield stack


def rejection_counts() -> dict[str, int]:
    totals: dict[str, int] = {}
    for snap in client().collection(REJECTIONS).stream():
        for reason, n in ((snap.to_dict() or {}).get("counts") or {}).items():
            totals[reason] = totals.get(reason, 0) + int(n)
    return totals


@pytest.fixture()
def app(api: Api) -> dict[str, Any]:
    return api.create_app("https://github.com/ana/shop")


def test_lines_reach_a_listener_and_the_api_in_order(api: Api, app: dict[str, Any]) -> None:
    service = app["serviceName"]
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_lines(lines: list[dict[str, Any]]) -> None:
        got.extend(lines)
        if len(got) >= 3:
            done.set()

    with LogFollower(client(), api.tenant, app["id"], on_lines):
        publish(entry(service, "a-1", "starting", "INFO"))
        publish(entry(service, "a-2", "listening on 8080", "INFO"))
        publish(entry(service, "a-3", "Traceback: boom", "ERROR"))
        assert done.wait(30), got
    assert sorted(line["text"] for line in got) == ["Traceback: boom", "listening on 8080", "starting"]
    assert {line["deploymentId"] for line in got} == {REVISION_SUFFIX[1:]}

    history = api.call("GET", f"/v1/apps/{app['id']}/logs").json()
    assert sorted(line["insertId"] for line in history["lines"]) == ["a-1", "a-2", "a-3"]
    assert history["cursor"] and history["tenantId"] == api.tenant
    errors = api.call("GET", f"/v1/apps/{app['id']}/logs", params={"severity": "ERROR"}).json()["lines"]
    assert [line["text"] for line in errors] == ["Traceback: boom"]
    one = api.call("GET", f"/v1/apps/{app['id']}/logs", params={"deployment": REVISION_SUFFIX[1:]}).json()
    assert len(one["lines"]) == 3
    assert api.call("GET", f"/v1/apps/{app['id']}/logs", params={"deployment": "ffffffffffff"}).json()["lines"] == []


def test_the_api_checks_who_asks_and_what(stack: Stack, api: Api, app: dict[str, Any]) -> None:
    intruder = Api(stack, tenant="intruder")
    assert intruder.call("GET", f"/v1/apps/{app['id']}/logs").status_code == 404
    for params in ({"since": "ages"}, {"severity": "LOUD"}, {"limit": "0"}, {"after": "x"}, {"source": "db"}):
        response = api.call("GET", f"/v1/apps/{app['id']}/logs", params=params)
        assert response.status_code == 400, params


def test_a_line_delivered_three_times_is_stored_once(log_worker: Stack, app: dict[str, Any]) -> None:
    line = entry(app["serviceName"], "dup-1", "only once")
    for _ in range(3):  # a publisher retry gets a new messageId; the insertId stays
        publish(line)
    publish(entry(app["serviceName"], "dup-2", "after"))
    wait_for(lambda: {x["insertId"] for x in stored_lines(app["id"])} == {"dup-1", "dup-2"}, "both lines")
    acked, nacked = restart_log_worker(log_worker) or (0, -1)
    # Every copy handled and acked, none on its way back (other apps of the session's stack may log meanwhile).
    assert acked >= 4 and nacked == 0
    assert sorted(x["insertId"] for x in stored_lines(app["id"])) == ["dup-1", "dup-2"]


def test_bad_entries_are_acknowledged_and_counted_and_the_worker_carries_on(
    log_worker: Stack, app: dict[str, Any]
) -> None:
    before = rejection_counts()
    publish(b"this is not json")
    publish({"insertId": "no-resource", "textPayload": "hello"})
    publish(entry(app["serviceName"], "too-big", "x" * (300 * 1024)))
    publish(entry("a-service-devgem-does-not-run", "foreign", "hello"))
    publish({**entry("x", "vm", "hello"), "resource": {"type": "gce_instance", "labels": {}}})
    expected = {"not-json": 1, "no-resource": 1, "too-large": 1, "unmanaged-service": 1, "unsupported-resource": 1}

    def grown() -> dict[str, int]:
        now = rejection_counts()
        return {reason: now.get(reason, 0) - before.get(reason, 0) for reason in expected}

    wait_for(lambda: grown() == expected, f"rejections {expected}")
    publish(entry(app["serviceName"], "good-after-bad", "still here"))
    wait_for(lambda: any(x["insertId"] == "good-after-bad" for x in stored_lines(app["id"])), "the good line")
    acked, nacked = restart_log_worker(log_worker) or (0, -1)
    # All acknowledged, none comes back to be counted again (other apps of the stack may log meanwhile).
    assert acked >= 6 and nacked == 0
    assert grown() == expected
    query = client().collection(collections.REJECTED_EVENTS).where(filter=FieldFilter("source", "==", "log_entry"))
    reasons = {str((s.to_dict() or {}).get("reason", "")).split(" ")[0] for s in query.stream()}
    assert reasons >= set(expected)  # the first of each reason is kept for a human


def stream_through_a_restart(stack: Stack, app: dict[str, Any], kill: bool, within: float) -> list[str]:
    """Publish 600 lines at ~200/s, restart the worker as soon as the first are stored, and return the
    insertIds stored once every line is (failing if that takes longer than `within` after the last)
    and both instances have settled all they were given."""
    total = 600  # published throughout the restart, so Pulls return lines while it stops

    def stream() -> None:
        for i in range(total):
            publish(entry(app["serviceName"], f"s-{i}", f"line {i}"))
            time.sleep(0.005)  # the scenario: lines keep coming while the worker restarts

    writer = threading.Thread(target=stream)
    writer.start()
    wait_for(lambda: len(stored_lines(app["id"])) > 0, "the first lines")
    first = restart_log_worker(stack, kill=kill)
    writer.join(60)
    every = lambda: len({x["insertId"] for x in stored_lines(app["id"])}) == total  # noqa: E731
    wait_for(every, f"every line within {within:.0f} s", timeout=within)
    if first is not None:  # SIGTERM: both instances' counts say every message was settled, once
        second = restart_log_worker(stack)
        assert second is not None and second[1] == 0 and first[0] + second[0] >= total, (first, second)
    return [x["insertId"] for x in stored_lines(app["id"])]


def test_a_worker_stopped_mid_stream_hands_back_what_it_holds_and_loses_nothing(
    stack: Stack, app: dict[str, Any]
) -> None:
    """SIGTERM (a Cloud Run scale-in or redeploy) while lines flow: the worker drains, so the next
    instance stores every line, and none twice. (That it nacks what is left rather than leave it to
    the ack deadline is shown in test_pull_worker, where the timing can be controlled.)"""
    ids = stream_through_a_restart(stack, app, kill=False, within=15)
    assert len(ids) == 600, f"{len(ids) - 600} stored twice"


def test_a_worker_killed_mid_stream_loses_nothing(stack: Stack, app: dict[str, Any]) -> None:
    """SIGKILL (an OOM, a lost host): what it held comes back after the 10 s ack deadline. A line
    committed but not yet acked is stored again; readers drop that copy by insertId."""
    ids = stream_through_a_restart(stack, app, kill=True, within=25)
    assert set(ids) == {f"s-{i}" for i in range(600)}


def test_escapes_and_invalid_utf8_are_stored_safely_and_line_text_is_never_logged(
    stack: Stack, app: dict[str, Any]
) -> None:
    raw = json.dumps(entry(app["serviceName"], "unsafe", "PLACEHOLDER")).encode()
    publish(
        raw.replace(b"PLACEHOLDER", b"\\u001b[31mDB_PASSWORD=hunter2\\u001b[0m \xff\xfe \\ud800 \\u001b]0;t\\u0007end")
    )
    wait_for(lambda: any(x["insertId"] == "unsafe" for x in stored_lines(app["id"])), "the unsafe line")
    (line,) = [x for x in stored_lines(app["id"]) if x["insertId"] == "unsafe"]
    assert line["text"] == "DB_PASSWORD=hunter2 \ufffd\ufffd \ufffd end"
    unmanaged = rejection_counts().get("unmanaged-service", 0)
    publish(entry("not-ours-either", "secret-bad", "DB_PASSWORD=hunter2"))
    wait_for(lambda: rejection_counts().get("unmanaged-service", 0) > unmanaged, "the foreign line's rejection")
    assert "hunter2" not in stack.children["log_entry"].log_path.read_text(errors="replace")


def test_the_cli_prints_history_and_follows(stack: Stack, api: Api, app: dict[str, Any], tmp_path: Path) -> None:
    service = app["serviceName"]
    publish(entry(service, "c-1", "boot", "INFO"))
    publish(entry(service, "c-2", "disk almost full", "WARNING"))
    wait_for(lambda: len(stored_lines(app["id"])) == 2, "two lines")
    env = {
        **os.environ,
        "DEVGEM_API_URL": stack.api_url,
        "DEVGEM_TOKEN": api.headers["Authorization"].split()[1],
        "DEVGEM_PROJECT": stack.env["GOOGLE_CLOUD_PROJECT"],
        "DEVGEM_FIRESTORE_EMULATOR_HOST": stack.env["FIRESTORE_EMULATOR_HOST"],
        "HOME": str(tmp_path),
    }
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    shown = subprocess.run(
        [str(DEVGEM), "logs", app["name"], "--severity", "warning"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    assert "disk almost full" in shown.stdout and "boot" not in shown.stdout and "\x1b" not in shown.stdout

    follow = subprocess.Popen(
        [str(DEVGEM), "logs", app["id"], "--follow", "--color", "always"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert follow.stdout is not None
        assert "boot" in follow.stdout.readline()
        assert "disk almost full" in follow.stdout.readline()
        publish(entry(service, "c-3", "Traceback: it broke", "ERROR"))
        later = follow.stdout.readline()
        assert "Traceback: it broke" in later and "\x1b[31mERROR" in later
    finally:
        follow.terminate()
        follow.wait(10)

    missing = subprocess.run(
        [str(DEVGEM), "logs", "nope"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert missing.returncode == 1 and "no app named 'nope'" in missing.stderr
    no_config = subprocess.run(
        [str(DEVGEM), "logs", "x"],
        env={k: v for k, v in env.items() if not k.startswith("DEVGEM_")},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert no_config.returncode == 1 and "make run" in no_config.stderr


def test_a_follower_catches_up_when_more_chunks_arrive_at_once_than_its_window_holds(
    api: Api, app: dict[str, Any]
) -> None:
    db = client()
    got: list[str] = []
    ids = ChunkIds("gap")
    floor = floor_before(ids.next())
    first = LogLine("g-ready", clock.now(), "INFO", "listening", "run", "stdout")
    (ready,) = chunk_docs(Target(api.tenant, app["id"], None), [first], clock.now(), ids)  # older than the rest
    batch = db.batch()
    for n in range(12):  # twelve chunks in one commit: one snapshot, four times the window
        target = Target(api.tenant, app["id"], f"{n:012x}")
        line = LogLine(f"g-{n}", clock.now(), "INFO", f"line {n}", "run", "stdout")
        for chunk_id, doc in chunk_docs(target, [line], clock.now(), ids):
            batch.create(logs_ref(db, app["id"]).document(chunk_id), doc)
    with LogFollower(
        db, api.tenant, app["id"], lambda lines: got.extend(x["text"] for x in lines), after=floor, window=3
    ) as follower:
        logs_ref(db, app["id"]).document(ready[0]).create(ready[1])
        wait_for(lambda: got == ["listening"], "the listener to see a first chunk")
        batch.commit()
        wait_for(lambda: len(got) == 13, "twelve more lines")
    assert got == ["listening", *[f"line {n}" for n in range(12)]]
    assert follower.gap_fills >= 1


def test_paging_returns_a_line_stored_twice_only_once(api: Api, app: dict[str, Any]) -> None:
    """Storage may hold a line twice (a redelivery another instance wrote). Each page keeps only the
    first copy of a line, so paging forward with `after=` or back with `before=` shows it once, even
    when the copies sit on different pages."""
    db = client()
    ids = ChunkIds("beef")
    target = Target(api.tenant, app["id"], None)
    start = floor_before(ids.next())
    now = clock.now()
    lines = [LogLine(f"p-{n}", now + timedelta(milliseconds=n), "INFO", f"line {n}", "run", "stdout") for n in range(6)]
    # chunk k holds line k; chunk 4 also holds a second copy of line 1, chunk 5 of lines 0 and 3
    contents = [[0], [1], [2], [3], [4, 1], [5, 0, 3]]
    for numbers in contents:
        for chunk_id, doc in chunk_docs(target, [lines[n] for n in numbers], clock.now(), ids):
            logs_ref(db, app["id"]).document(chunk_id).create(doc)
    returned: list[str] = []
    cursor = start
    for _ in range(10):  # one chunk a page (limit 1), then an empty page
        response = api.call("GET", f"/v1/apps/{app['id']}/logs", params={"after": cursor, "limit": 1})
        assert response.status_code == 200, response.text
        body = response.json()
        returned += [line["insertId"] for line in body["lines"]]
        if body["cursor"] == cursor:
            break
        cursor = body["cursor"]
    assert returned == [f"p-{n}" for n in range(6)]
    back: list[str] = []
    params = {"limit": "1"}
    for _ in range(10):
        body = api.call("GET", f"/v1/apps/{app['id']}/logs", params=params).json()
        back += [line["insertId"] for line in body["lines"]]
        if not body["oldest"]:
            break
        params = {"limit": "1", "before": body["oldest"]}
    assert sorted(back) == [f"p-{n}" for n in range(6)]
