"""Slack: incident messages with a "Roll back" button, replies in their thread, and the button's value.

The official slack-sdk WebClient, pointed at `DEVGEM_SLACK_API_URL` (devstack's local receiver, or
Slack). Slack answers 429 with Retry-After when a channel gets more than about a message a second;
the RateLimitErrorRetryHandler waits and retries, so a burst of incidents is delayed, never lost.

Each tenant posts with its own bot token into its own channel. Firestore holds only the channel and
the token's secret reference (`tenants/{t}/integrations/slack`); the token is resolved when a
message is sent and is never stored or logged.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.cloud import firestore
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from devgem.adapters import secrets
from devgem.adapters.collections import INTEGRATIONS, SLACK_USERS, TENANTS
from devgem.config import settings
from devgem.domain.errors import InvalidInput, NotFound

ROLLBACK_ACTION_ID = "devgem_roll_back"
LOGS_ACTION_ID = "devgem_view_logs"
# Retries of one message on 429. Each waits the Retry-After Slack asked for, so a crash loop across
# many apps slows the notifier down instead of dropping messages.
MAX_RATE_LIMIT_RETRIES = 5
_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class SlackConfig:
    channel: str
    token: str = field(repr=False)  # never in a repr, so never in a log line or a traceback's locals


@dataclass(frozen=True)
class SlackThread:
    """Where a message landed; replies go to the same channel with its ts as thread_ts."""

    channel: str
    ts: str


@dataclass(frozen=True)
class IncidentNotice:
    tenant_id: str
    app_id: str
    app_name: str
    title: str
    what_crashed: str  # a few lines: the signature and where, quoted as code
    logs_url: str
    rollback_to: str | None  # the deployment to roll back to; None: nothing earlier, so no button
    rollback_label: str = ""  # how the user knows that release (e.g. "a1b2c3d, 2 hours ago")


@dataclass(frozen=True)
class RollbackChoice:
    """What a "Roll back" button carries. Slack signs the request, not our value, so the entry point
    still checks that the Slack user may act in this tenant before anything moves."""

    tenant_id: str
    app_id: str
    to: str


def rollback_value(choice: RollbackChoice) -> str:
    return json.dumps({"t": choice.tenant_id, "a": choice.app_id, "to": choice.to}, separators=(",", ":"))


def parse_rollback_value(value: str) -> RollbackChoice:
    try:
        data = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("the button's value is not Devgem's") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("t", "a", "to")):
        raise InvalidInput("the button's value is not Devgem's")
    return RollbackChoice(tenant_id=data["t"], app_id=data["a"], to=data["to"])


def incident_blocks(notice: IncidentNotice) -> list[dict[str, Any]]:
    """Block Kit for an incident. Plain text falls back to `incident_text` for notifications."""
    actions: list[dict[str, Any]] = []
    if notice.rollback_to:
        label = notice.rollback_label or notice.rollback_to
        actions.append(
            {
                "type": "button",
                "action_id": ROLLBACK_ACTION_ID,
                "style": "danger",
                "text": {"type": "plain_text", "text": _clip(f"Roll back to {label}", 75)},
                "value": rollback_value(RollbackChoice(notice.tenant_id, notice.app_id, notice.rollback_to)),
                "confirm": {
                    "title": {"type": "plain_text", "text": "Roll back?"},
                    "text": {"type": "mrkdwn", "text": _clip(f"Move {notice.app_name}'s traffic to {label}.", 300)},
                    "confirm": {"type": "plain_text", "text": "Roll back"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            }
        )
    actions.append(
        {
            "type": "button",
            "action_id": LOGS_ACTION_ID,
            "text": {"type": "plain_text", "text": "View logs"},
            "url": notice.logs_url,
        }
    )
    return [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(notice.title, 150)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"*{notice.app_name}*\n```{notice.what_crashed}```", 3000)},
        },
        {"type": "actions", "elements": actions},
    ]


def incident_text(notice: IncidentNotice) -> str:
    return f"{notice.title}: {notice.app_name}"


def _clip(text: str, limit: int) -> str:
    """Slack refuses a whole message whose block text is over its limit; a clipped line is better."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FirestoreSlackConfigs:
    """A tenant's Slack channel and bot token: the channel from Firestore, the token from its secret."""

    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def get(self, tenant_id: str) -> SlackConfig:
        snap = self._db.collection(TENANTS).document(tenant_id).collection(INTEGRATIONS).document("slack").get()
        data = snap.to_dict() if snap.exists else None
        if not data or not data.get("channel") or not data.get("tokenSecret"):
            raise NotFound(f"tenant {tenant_id} has no Slack channel configured")
        return SlackConfig(
            channel=str(data["channel"]), token=secrets.tenant_secret(tenant_id, str(data["tokenSecret"]))
        )


class FirestoreSlackUsers:
    """tenants/{t}/slackUsers/{slackUserId} -> the Devgem user that Slack user acts as."""

    def __init__(self, db: firestore.Client) -> None:
        self._db = db

    def user_for(self, tenant_id: str, slack_team_id: str, slack_user_id: str) -> str | None:
        if not _DOC_ID.match(tenant_id) or not _DOC_ID.match(slack_user_id):
            return None  # both come from the request; neither may walk the document path
        ref = self._db.collection(TENANTS).document(tenant_id).collection(SLACK_USERS).document(slack_user_id)
        data = ref.get().to_dict() or {}
        # A mapping may name its workspace; then a same-named user of another workspace is nobody.
        if data.get("teamId") and data["teamId"] != slack_team_id:
            return None
        user = data.get("userId")
        return user if isinstance(user, str) and user else None


class SlackConfigs(Protocol):
    def get(self, tenant_id: str) -> SlackConfig: ...


class SlackNotifier:
    """Posts for a tenant with that tenant's token; one WebClient per token, made when first needed."""

    def __init__(self, configs: SlackConfigs) -> None:
        self._configs = configs
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def _client(self, token: str) -> WebClient:
        with self._lock:
            client = self._clients.get(token)
            if client is None:
                client = WebClient(token=token, base_url=settings().slack_api_url, timeout=10)
                client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=MAX_RATE_LIMIT_RETRIES))
                self._clients[token] = client
            return client

    def post_incident(self, notice: IncidentNotice) -> SlackThread:
        config = self._configs.get(notice.tenant_id)
        response = self._client(config.token).chat_postMessage(
            channel=config.channel, text=incident_text(notice), blocks=incident_blocks(notice)
        )
        return SlackThread(channel=str(response["channel"] or config.channel), ts=str(response["ts"]))

    def reply(self, tenant_id: str, thread: SlackThread, text: str) -> SlackThread:
        config = self._configs.get(tenant_id)
        response = self._client(config.token).chat_postMessage(channel=thread.channel, text=text, thread_ts=thread.ts)
        return SlackThread(channel=thread.channel, ts=str(response["ts"]))


def respond(response_url: str, text: str) -> None:
    """Answer the person who pressed a button, only to them (ephemeral), through the `response_url` of
    the verified interactivity payload: Slack ignores the body of the HTTP answer to a block action."""
    client = WebhookClient(response_url, timeout=10)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=MAX_RATE_LIMIT_RETRIES))
    client.send(text=text, response_type="ephemeral", replace_original=False)
