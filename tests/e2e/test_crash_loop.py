"""The watching loop on the real local stack: a live app crashes -> one incident -> one Slack message
with a "Roll back" button -> a signed press of that button -> the earlier release is live again."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import requests

from devgem.adapters.slack import ROLLBACK_ACTION_ID, parse_rollback_value
from devstack import watch
from devstack.api_client import Api
from devstack.slack_receiver import interactivity_body, signed_headers
from devstack.slack_setup import connect_slack, link_slack_user, received
from devstack.stack import Stack
from tests.fixtures import apps
from tests.integration.test_crash_detection import CRASHING_APP, incident
from tests.waiting import wait_for


def test_a_crash_reaches_slack_once_and_its_button_rolls_back(stack: Stack, api: Api, repos: Path) -> None:
    channel = connect_slack(api.tenant)
    link_slack_user(api.tenant, "U-ANA", "ana")
    repo = apps.repo_with(repos, "crashes-loop", {"main.py": CRASHING_APP, "requirements.txt": ""})
    app = api.create_app(str(repo))
    first_id = api.deploy(app["id"])["id"]
    first = watch.follow_deployment(first_id, timeout=180)
    second_id = api.deploy(app["id"])["id"]
    second = watch.follow_deployment(second_id, timeout=180)
    assert first["status"] == second["status"] == "live"

    host = second["url"].split("//", 1)[1]
    for _ in range(3):  # three crashes in a row: one incident, escalated to a crash loop in its thread
        with contextlib.suppress(requests.RequestException):
            requests.get(stack.router_url + "/crash", headers={"Host": host}, timeout=10)
        wait_for(lambda: requests.get(stack.router_url + "/", headers={"Host": host}, timeout=5).ok, "restart", 30)

    thread: dict[str, Any] = wait_for(
        lambda: incident(app["id"], "exit:3").get("slackThread") or {}, "the incident's Slack thread", 60
    )
    posts = wait_for(
        lambda: [m for m in received(stack.slack_url, channel) if m.get("blocks")], "the Slack message", 30
    )
    assert len(posts) == 1, json.dumps(posts)[:2000]  # one message per incident, however many crashes
    [post] = posts
    assert post["ts"] == thread["ts"]
    replies = wait_for(
        lambda: [m for m in received(stack.slack_url, channel) if m.get("thread_ts") == thread["ts"]],
        "the loop's reply",
        30,
    )
    assert len(replies) == 1 and "3 crashes" in replies[0]["text"], replies  # escalated once, in the thread
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    roll = next(b for b in buttons if b.get("action_id") == ROLLBACK_ACTION_ID)
    choice = parse_rollback_value(roll["value"])
    assert (choice.tenant_id, choice.app_id) == (api.tenant, app["id"])
    assert choice.to == first_id

    payload = {
        "type": "block_actions",
        "team": {"id": "T-LOCAL"},
        "user": {"id": "U-ANA"},
        "response_url": "",
        "actions": [{"action_id": ROLLBACK_ACTION_ID, "value": roll["value"]}],
    }
    body = interactivity_body(payload)
    pressed = requests.post(stack.function_url("slack_actions"), data=body, headers=signed_headers(body), timeout=120)
    assert pressed.status_code == 200 and "Rolled back" in pressed.json()["text"], pressed.text
    live = api.call("GET", f"/v1/apps/{app['id']}").json()
    assert live["liveRevision"] == first["revision"]
