"""`make demo`: the watching loop, as a scripted tour of the platform `make run` is running.

A second release of the example goes live; the app is made to crash (its /crash route); the incident
appears; the local Slack receiver shows its one message with the "Roll back" button; the button is
pressed (a request signed as Slack signs it); and the URL serves the earlier release again. Every step
goes through the real servers, as tests/e2e/test_crash_loop.py does.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from devgem.adapters import collections
from devgem.adapters.firestore_client import client
from devgem.adapters.slack import ROLLBACK_ACTION_ID, parse_rollback_value
from devgem.domain.incidents import incident_id
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.processes import wait_for_value
from devstack.slack_receiver import interactivity_body, signed_headers
from devstack.slack_setup import connect_slack, link_slack_user, received
from devstack.stack import REPO, Ports, Stack

TENANT, USER, SLACK_USER, CHANNEL = "demo-tenant", "demo-user", "U-DEMO", "C-DEMO"
T = TypeVar("T")


def main() -> int:
    stack = Stack(REPO / ".devgem", ports=Ports.fixed())
    stack.apply_env()
    try:
        requests.get(stack.slack_url + "/messages", timeout=2).raise_for_status()
    except requests.RequestException:
        print("make demo tours the running platform: start it with `make run` in another terminal first.")
        return 2
    api = Api(stack, TENANT, USER)
    connect_slack(TENANT, CHANNEL)  # the demo tenant's channel on the local receiver
    link_slack_user(TENANT, SLACK_USER, USER)
    step("1. Two releases of examples/hello-python, through the api")
    repo = example_repos.example("hello-python", stack.state_dir / "repos")
    app = api.create_app(str(repo), name=f"demo-{int(time.time()) % 100000}")
    first, second = _release(api, app["id"]), _release(api, app["id"])
    host = second["url"].split("//", 1)[1]
    say(f"{app['name']} is live at {second['url']}, revision {second['revision']} (before it: {first['revision']})")

    step("2. The app crashes (GET /crash makes it exit(3))")
    with contextlib.suppress(requests.RequestException):  # it dies mid-request: that is the point
        requests.get(stack.router_url + "/crash", headers={"Host": host}, timeout=10)
    doc = client().collection(collections.INCIDENTS).document(incident_id(app["id"], "exit:3"))
    incident = wait(lambda: (doc.get().to_dict() or {}).get("slackThread") and doc.get().to_dict(), "the incident")
    say(f"incident {doc.id}: {incident['fingerprint']}, {incident['count']} crash(es), status {incident['status']}")

    step("3. The local Slack receiver got one message, with a button")
    post = wait(lambda: _post(stack, str(incident["slackThread"]["ts"])), "the Slack message")
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    roll = next(b for b in buttons if b.get("action_id") == ROLLBACK_ACTION_ID)
    say(f"{post['text']!r} in {post['channel']}, buttons: {[b['text']['text'] for b in buttons]}")

    step("4. The button is pressed (a request signed as Slack signs it)")
    payload = {"type": "block_actions", "team": {"id": "T-LOCAL"}, "user": {"id": SLACK_USER}, "response_url": ""}
    body = interactivity_body({**payload, "actions": [{"action_id": ROLLBACK_ACTION_ID, "value": roll["value"]}]})
    pressed = requests.post(stack.function_url("slack_actions"), data=body, headers=signed_headers(body), timeout=120)
    say(f"slack_actions answered {pressed.status_code}: {pressed.json().get('text')}")

    step("5. The URL serves the earlier release again")
    target = parse_rollback_value(roll["value"]).to
    page = wait(lambda: _serving(stack, host, first["revision"]), f"revision {first['revision']}")
    say(f"rolled back to deployment {target}; {second['url']} now says: {page}")
    return 0


def _release(api: Api, app_id: str) -> dict[str, Any]:
    deployment_id = api.deploy(app_id)["id"]
    final = watch.follow_deployment(deployment_id, timeout=300)
    if final.get("status") != "live":
        raise SystemExit(f"deployment {deployment_id} ended {final.get('status')}: {final.get('error')}")
    say(f"deployment {deployment_id}: live, revision {final['revision']}")
    return final


def _post(stack: Stack, ts: str) -> dict[str, Any] | None:
    return next((m for m in received(stack.slack_url) if m.get("ts") == ts and m.get("blocks")), None)


def _serving(stack: Stack, host: str, revision: str) -> str | None:
    page = requests.get(stack.router_url + "/", headers={"Host": host}, timeout=10).text
    return f"Revision {revision}" if revision in page else None


def wait(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    try:
        return wait_for_value(check, timeout, what)
    except TimeoutError:
        raise SystemExit(f"no {what} after {timeout:.0f} s; the platform's logs are in .devgem/logs/") from None


def step(text: str) -> None:
    print(f"\n{text}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
