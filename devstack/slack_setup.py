"""A local tenant wired to the local Slack receiver, as an admin would connect a real workspace (no
api does this yet): the tenant's channel and bot token reference, its linked Slack users, and what the
receiver got. `make demo`, `make bench-crash` and the tests share it."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from devgem.adapters import collections
from devgem.adapters.firestore_client import client
from devstack.stack import LOCAL_SLACK_TOKEN_SECRET


def connect_slack(tenant_id: str, channel: str | None = None) -> str:
    """Point the tenant's Slack integration at `channel` (a fresh one if None), with the local bot token."""
    channel = channel or f"C{uuid.uuid4().hex[:8].upper()}"
    integrations = client().collection(collections.TENANTS).document(tenant_id).collection(collections.INTEGRATIONS)
    integrations.document("slack").set(
        {"tenantId": tenant_id, "channel": channel, "tokenSecret": LOCAL_SLACK_TOKEN_SECRET}
    )
    return channel


def link_slack_user(tenant_id: str, slack_user_id: str, user_id: str) -> None:
    """Let a Slack user act as a Devgem user of the tenant (what a button press is checked against)."""
    users = client().collection(collections.TENANTS).document(tenant_id).collection(collections.SLACK_USERS)
    users.document(slack_user_id).set({"tenantId": tenant_id, "userId": user_id})


def received(slack_url: str, channel: str | None = None) -> list[dict[str, Any]]:
    """What the local receiver got, oldest first; only `channel`'s if given."""
    messages: list[dict[str, Any]] = requests.get(f"{slack_url}/messages", timeout=10).json()["messages"]
    return [m for m in messages if channel is None or m.get("channel") == channel]
