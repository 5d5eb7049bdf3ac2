"""Crashes become incidents on the real local stack: localcloud's Log Router selects crash signals with
the same rule as production's sink and publishes them to `crash-detected`; the crash_detected worker
groups them. Signals are also published straight to the topic here, as the sink would, for the burst."""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from google.cloud.firestore import FieldFilter

from devgem import topology
from devgem.adapters import collections, pubsub
from devgem.adapters.firestore_client import client
from devgem.domain.incidents import incident_id
from devstack import watch
from devstack.api_client import Api
from devstack.stack import Stack
from tests.fixtures import apps
from tests.waiting import wait_for

CRASHING_APP = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/crash":
            print("about to crash on purpose", flush=True)
            os._exit(3)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"up")


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def incident(app_id: str, fingerprint: str) -> dict[str, Any]:
    """The incident document, or {} while there is none."""
    snapshot = client().collection(collections.INCIDENTS).document(incident_id(app_id, fingerprint)).get()
    return (snapshot.to_dict() or {}) if snapshot.exists else {}


def incidents_of(app_id: str) -> list[dict[str, Any]]:
    query = client().collection(collections.INCIDENTS).where(filter=FieldFilter("appId", "==", app_id))
    return [s.to_dict() or {} for s in query.stream()]


def exit_signal(service: str, insert_id: str, code: int) -> dict[str, Any]:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"
    return {
        "insertId": insert_id,
        "logName": "projects/devgem-local/logs/run.googleapis.com%2Fvarlog%2Fsystem",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": service, "revision_name": f"{service}-0123456789ab", "location": "l"},
        },
        "timestamp": stamp,
        "severity": "ERROR",
        "labels": {"devgem-managed": "true", "instanceId": "i-1"},
        "textPayload": f"Container called exit({code}).",
    }


def publish_all(entries: list[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda e: pubsub.publish_raw(topology.CRASH_DETECTED, json.dumps(e).encode()), entries))


def test_an_app_that_crashes_becomes_one_incident(stack: Stack, api: Api, repos: Path) -> None:
    repo = apps.repo_with(repos, "crashes", {"main.py": CRASHING_APP, "requirements.txt": ""})
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])
    final = watch.follow_deployment(deployment["id"], timeout=180)
    assert final["status"] == "live", final
    host = final["url"].split("//", 1)[1]
    crashed = time.monotonic()
    with contextlib.suppress(requests.RequestException):  # the app dies mid-request: that is the point
        requests.get(stack.router_url + "/crash", headers={"Host": host}, timeout=10)

    found = wait_for(lambda: incident(app["id"], "exit:3"), "an incident for exit(3)", 60)
    print(f"crash-single: crash_to_incident_ms={(time.monotonic() - crashed) * 1000:.0f}")
    assert found["count"] == 1
    assert found["tenantId"] == api.tenant
    assert found["status"] == "open"
    assert found["revision"] == final["revision"]
    assert found["deploymentId"] == deployment["id"]
    notified = wait_for(lambda: incident(app["id"], "exit:3").get("noticesSent") == 1, "the notice", 30)
    assert notified
    with_context = wait_for(lambda: list(incident(app["id"], "exit:3").get("context") or []), "its log context", 30)
    assert "about to crash on purpose" in with_context
    exits = [i for i in incidents_of(app["id"]) if i["fingerprint"].startswith("exit:")]
    assert len(exits) == 1


def test_a_crash_loop_of_1000_signals_is_one_incident_with_few_writes(stack: Stack, api: Api, repos: Path) -> None:
    app = api.create_app(str(apps.repo_with(repos, "loops", {"main.py": "", "requirements.txt": ""})))
    entries = [exit_signal(app["serviceName"], f"loop-{n:05d}", 7) for n in range(1000)]
    started = time.monotonic()
    publish_all(entries)
    published = time.monotonic()

    done = wait_for(lambda: (d := incident(app["id"], "exit:7")).get("count", 0) >= 1000 and d, "1,000 counted", 60)
    counted = time.monotonic()
    assert done["count"] == 1000
    assert done["level"] == "loop"
    assert len(incidents_of(app["id"])) == 1
    seconds = counted - started
    # At most about one write a second, plus the first (an alert does not wait) and the notices.
    assert done["writes"] <= seconds + 6, (done["writes"], seconds)
    print(
        f"crash-burst: signals=1000 publish_s={published - started:.1f} counted_s={seconds:.1f} "
        f"incident_writes={done['writes']} notices={done['noticesSent']}"
    )

    # Redelivered (the same insertIds again), also to a worker that was killed and remembers nothing.
    publish_all(entries[:200])
    stack.restart_worker("crash_detected", kill=True)
    publish_all(entries[200:400])
    publish_all([exit_signal(app["serviceName"], "loop-new", 7)])  # proof the new worker got this far
    wait_for(lambda: incident(app["id"], "exit:7").get("count", 0) >= 1001, "the new signal counted", 60)
    time.sleep(2)  # the duplicates may trail the new signal (Pub/Sub keeps no order)
    again = incident(app["id"], "exit:7")
    assert again["count"] == 1001
    assert again["noticesSent"] == done["noticesSent"]


def test_a_worker_killed_mid_incident_leaves_one_incident_one_notice_and_the_right_count(
    stack: Stack, api: Api, repos: Path
) -> None:
    app = api.create_app(str(apps.repo_with(repos, "killed", {"main.py": "", "requirements.txt": ""})))
    entries = [exit_signal(app["serviceName"], f"kill-{n:05d}", 9) for n in range(1000)]
    first = stack.children["crash_detected"]
    publish_all(entries[:500])
    wait_for(lambda: incident(app["id"], "exit:9").get("count", 0) > 0, "the incident opened", 30)
    stack.restart_worker("crash_detected", kill=True)  # mid-incident: it held signals it had not acked
    publish_all(entries[500:])

    done = wait_for(lambda: (d := incident(app["id"], "exit:9")).get("count", 0) >= 1000 and d, "1,000 counted", 90)
    time.sleep(2)  # redeliveries of what the killed worker held may trail
    final = incident(app["id"], "exit:9")
    assert final["count"] == 1000, done
    assert final["noticesSent"] == 1
    assert final["pendingNotice"] is None
    second = stack.children["crash_detected"]
    opened = f"incident {incident_id(app['id'], 'exit:9')} opened"
    assert first.output().count(opened) + second.output().count(opened) == 1
