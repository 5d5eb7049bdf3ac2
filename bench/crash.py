"""`make bench-crash`: how fast a crash reaches Slack, that a crash loop stays one message, and how fast a
rollback serves the earlier release, on the real local stack.

alert:    the crashing request sent -> the local Slack receiver got the incident's message (its own
          receivedAt), through the router, localcloud's Log Router, crash-detected, the crash_detected
          worker and slack-sdk. Each crash exits with a new code, so each is a new incident.
loop:     1,000 exit signals of one app published to crash-detected as fast as they go (a crash loop, as
          the sink would deliver it): incidents and Slack messages must stay one.
rollback: POST /v1/apps/{app}/rollback {"to": ...} -> the router serves that release's revision,
          alternating between two healthy releases (before the crashes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from google.cloud.firestore import FieldFilter

from bench.stats import percentile
from devgem import topology
from devgem.adapters import collections, pubsub
from devgem.adapters.firestore_client import client
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.processes import wait_for_value
from devstack.slack_setup import connect_slack, received
from devstack.stack import Stack

APP = """
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/crash/"):
            os._exit(int(self.path.rsplit("/", 1)[1]))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ.get("K_REVISION", "?").encode())


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--loop", type=int, default=1000)
    parser.add_argument("--rollbacks", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devgem-bench-crash-") as tmp, Stack(Path(tmp)) as stack:
        api = Api(stack, tenant="bench-crash")
        channel = connect_slack(api.tenant)
        source = Path(tmp) / "crash-app-src"
        source.mkdir()
        (source / "main.py").write_text(APP)
        (source / "requirements.txt").write_text("")
        repo = example_repos.make_repo(source, Path(tmp) / "crash-app")
        app = api.create_app(str(repo))
        releases = [_deploy(api, app["id"]) for _ in range(2)]
        host = releases[-1]["url"].split("//", 1)[1]
        # Rollbacks first, between two healthy releases: one to a revision that has just crashed twenty
        # times waits for its restart back-off (localcloud's supervisor, 1 s doubling to 30 s, as Cloud
        # Run backs off a crashing container), which measures the app, not the rollback.
        rollback_ms = [_roll_back(stack, api, app["id"], host, releases[i % 2]) for i in range(args.rollbacks)]
        alert_ms = [_crash_to_alert(stack, host, channel, code) for code in range(1, args.crashes + 1)]
        before_loop = len(_posts(stack, channel))
        _crash_loop(releases[-1]["serviceName"], args.loop)
        time.sleep(5)  # the worker writes an incident at most once a second: let the last flushes land
        loop_posts = len(_posts(stack, channel)) - before_loop
        loop_incidents = len(_incidents(app["id"], "exit:99"))
        incidents = len(_incidents(app["id"]))
    posts = args.crashes + loop_posts
    print(f"loop: signals={args.loop} incidents={loop_incidents} slack_messages={loop_posts}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"crash: signals={args.crashes + args.loop} incidents={incidents} slack_messages={posts} "
        f"alert_p50_ms={percentile(alert_ms, 50):.0f} alert_p99_ms={percentile(alert_ms, 99):.0f}"
    )
    print("rollbacks (ms): " + " ".join(f"{ms:.0f}" for ms in rollback_ms))
    print(
        f"rollback: n={len(rollback_ms)} p50_ms={percentile(rollback_ms, 50):.0f} "
        f"p99_ms={percentile(rollback_ms, 99):.0f}"
    )


def _deploy(api: Api, app_id: str) -> dict[str, Any]:
    deployment_id = api.deploy(app_id)["id"]
    final = watch.follow_deployment(deployment_id, timeout=300)
    if final.get("status") != "live":
        raise SystemExit(f"deploy ended {final.get('status')}: {final.get('error')}")
    return {**final, "id": deployment_id}


def _posts(stack: Stack, channel: str) -> list[dict[str, Any]]:
    """The channel's incident messages (thread replies have no blocks)."""
    return [m for m in received(stack.slack_url, channel) if m.get("blocks")]


def _wait(check: Any, timeout: float, what: str) -> Any:
    return wait_for_value(check, timeout, what, every=0.02)  # 20 ms: the rollback is timed by this poll


def _crash_to_alert(stack: Stack, host: str, channel: str, code: int) -> float:
    _wait(lambda: requests.get(stack.router_url + "/", headers={"Host": host}, timeout=5).ok, 60, "the app up")
    sent = time.time()
    with contextlib.suppress(requests.RequestException):  # the app dies mid-request: that is the point
        requests.get(f"{stack.router_url}/crash/{code}", headers={"Host": host}, timeout=10)
    post = _wait(
        lambda: next((m for m in _posts(stack, channel) if f"exit:{code})" in json.dumps(m)), None),
        30,
        f"the alert for exit({code})",
    )
    return (float(post["receivedAt"]) - sent) * 1000


def _crash_loop(service: str, signals: int) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    run = uuid.uuid4().hex[:8]

    def entry(n: int) -> bytes:
        return json.dumps(
            {
                "insertId": f"loop-{run}-{n}",
                "logName": "projects/devgem-local/logs/run.googleapis.com%2Fvarlog%2Fsystem",
                "resource": {
                    "type": "cloud_run_revision",
                    "labels": {"service_name": service, "revision_name": f"{service}-0123456789ab", "location": "l"},
                },
                "timestamp": f"{stamp}.{n:06d}Z",
                "severity": "ERROR",
                "labels": {"devgem-managed": "true", "instanceId": "i-1"},
                "textPayload": "Container called exit(99).",
            }
        ).encode()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: pubsub.publish_raw(topology.CRASH_DETECTED, entry(n)), range(signals)))


def _incidents(app_id: str, fingerprint: str | None = None) -> list[dict[str, Any]]:
    query = client().collection(collections.INCIDENTS).where(filter=FieldFilter("appId", "==", app_id))
    found = [s.to_dict() or {} for s in query.stream()]
    return [i for i in found if fingerprint is None or i.get("fingerprint") == fingerprint]


def _roll_back(stack: Stack, api: Api, app_id: str, host: str, to: dict[str, Any]) -> float:
    started = time.monotonic()
    response = api.call("POST", f"/v1/apps/{app_id}/rollback", json={"to": to["id"]})
    if response.status_code != 200:
        raise SystemExit(f"rollback to {to['id']} answered {response.status_code}: {response.text}")
    serving = lambda: to["revision"] in requests.get(stack.router_url + "/", headers={"Host": host}, timeout=5).text  # noqa: E731
    _wait(serving, 30, f"revision {to['revision']} serving")
    return (time.monotonic() - started) * 1000


if __name__ == "__main__":
    main()
