"""The production Slack adapter (the real slack-sdk) against devstack's local Slack receiver, and the
slack_actions function over HTTP: what is posted arrives once, 429s delay it without losing it, replies
land in their thread, and only Slack-signed, fresh requests reach the rollback."""

from __future__ import annotations

import time
import uuid

import requests

from devgem.adapters.firestore_client import client
from devgem.adapters.slack import (
    ROLLBACK_ACTION_ID,
    FirestoreSlackConfigs,
    IncidentNotice,
    RollbackChoice,
    SlackNotifier,
    parse_rollback_value,
    rollback_value,
)
from devstack.slack_receiver import LOCAL_BOT_TOKEN, LOCAL_SIGNING_SECRET, interactivity_body, signed_headers
from devstack.slack_setup import connect_slack, link_slack_user, received
from devstack.stack import Stack


def _tenant_with_slack() -> tuple[str, str]:
    """A fresh tenant whose integration names a channel and the local bot token's reference."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    return tenant, connect_slack(tenant)


def _notice(tenant: str) -> IncidentNotice:
    return IncidentNotice(
        tenant_id=tenant,
        app_id="app1",
        app_name="shop",
        title="shop crashed",
        what_crashed="Container called exit(1).",
        logs_url="http://127.0.0.1/apps/app1/logs",
        rollback_to="dep-earlier",
    )


def _notifier() -> SlackNotifier:
    return SlackNotifier(FirestoreSlackConfigs(client()))


def test_an_incident_reaches_the_channel_once_with_its_rollback_button(stack: Stack) -> None:
    tenant, channel = _tenant_with_slack()
    thread = _notifier().post_incident(_notice(tenant))
    [message] = received(stack.slack_url, channel)
    assert message["ts"] == thread.ts
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    roll = next(b for b in buttons if b.get("action_id") == ROLLBACK_ACTION_ID)
    assert parse_rollback_value(roll["value"]) == RollbackChoice(tenant, "app1", "dep-earlier")
    assert "xoxb" not in str(message)  # the receiver never sees a token in the body
    kept = (stack.state_dir / "slack" / "messages.jsonl").read_text()
    assert thread.ts in kept and LOCAL_BOT_TOKEN not in kept


def test_two_429s_with_retry_after_delay_the_message_and_lose_nothing(stack: Stack) -> None:
    tenant, channel = _tenant_with_slack()
    notifier = _notifier()
    notifier.post_incident(_notice(tenant))  # the client exists and the token is resolved before the clock starts
    before = requests.get(f"{stack.slack_url}/messages", timeout=10).json()["rateLimited"]
    requests.post(f"{stack.slack_url}/control/rate-limit?n=2&retry_after=1", timeout=10).raise_for_status()
    started = time.monotonic()
    notifier.post_incident(_notice(tenant))
    waited = time.monotonic() - started
    assert waited >= 2.0, f"delivered after {waited:.2f} s: Retry-After was not honoured"
    assert len(received(stack.slack_url, channel)) == 2
    assert requests.get(f"{stack.slack_url}/messages", timeout=10).json()["rateLimited"] == before + 2


def test_a_reply_lands_in_the_incidents_thread(stack: Stack) -> None:
    tenant, channel = _tenant_with_slack()
    notifier = _notifier()
    thread = notifier.post_incident(_notice(tenant))
    notifier.reply(tenant, thread, "Resolved: healthy for 10 minutes.")
    parent, reply = received(stack.slack_url, channel)
    assert reply["thread_ts"] == parent["ts"] == thread.ts
    assert reply["text"] == "Resolved: healthy for 10 minutes."


def _press(tenant: str, slack_user: str, response_url: str = "") -> bytes:
    value = rollback_value(RollbackChoice(tenant, "app1", "dep-earlier"))
    payload = {
        "response_url": response_url,
        "type": "block_actions",
        "team": {"id": "T-LOCAL"},
        "user": {"id": slack_user},
        "actions": [{"action_id": ROLLBACK_ACTION_ID, "value": value}],
    }
    return interactivity_body(payload)


def test_slack_actions_refuses_forged_and_replayed_requests_and_passes_a_signed_one_on(stack: Stack) -> None:
    tenant, _ = _tenant_with_slack()
    link_slack_user(tenant, "U-ANA", "ana")
    url = stack.function_url("slack_actions")
    body = _press(tenant, "U-ANA")

    forged = requests.post(url, data=body.replace(b"dep-earlier", b"dep-other"), headers=signed_headers(body))
    replayed = requests.post(url, data=body, headers=signed_headers(body, at=time.time() - 301))
    wrong_secret = requests.post(url, data=body, headers=signed_headers(body, secret="guess"))
    assert [r.status_code for r in (forged, replayed, wrong_secret)] == [401, 401, 401]

    answer_at = f"{stack.slack_url}/actions/T-LOCAL/{tenant}/x"
    pressed = _press(tenant, "U-NOBODY", response_url=answer_at)
    stranger = requests.post(url, data=pressed, headers=signed_headers(pressed))
    assert stranger.status_code == 200
    assert "not linked to a Devgem user" in stranger.json()["text"]
    messages = requests.get(f"{stack.slack_url}/messages", timeout=10).json()["messages"]
    [answer] = [m for m in messages if m.get("path") == f"/actions/T-LOCAL/{tenant}/x"]
    assert "not linked to a Devgem user" in answer["text"] and answer["response_type"] == "ephemeral"

    # Signed and mapped: it reaches the rollback use case as ana, which refuses an app that is not hers.
    signed = requests.post(url, data=body, headers=signed_headers(body))
    assert signed.status_code == 200
    assert "app1" in signed.json()["text"] and "Rolled back" not in signed.json()["text"]
    assert LOCAL_SIGNING_SECRET not in stack.children["slack_actions"].log_path.read_text(errors="replace")
