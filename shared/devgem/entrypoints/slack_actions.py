"""Slack's interactivity requests (a pressed "Roll back" button), verified before anything is read.

Anyone on the internet can reach this public function. Only a request signed with the app's signing
secret, with a timestamp under 5 minutes old, is Slack's; anything else answers 401 and changes
nothing, so a forged request or a captured one replayed later cannot roll an app back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import flask
from slack_sdk.signature import SignatureVerifier

from devgem.adapters import slack
from devgem.adapters.slack import ROLLBACK_ACTION_ID
from devgem.domain.errors import DevgemError
from devgem.usecases.slack_action import HandleSlackAction, SlackAction

log = logging.getLogger(__name__)

# Slack's interactivity payloads (the pressed message included) stay far below this; anything
# larger is not Slack and is not worth hashing.
MAX_BODY_BYTES = 1024 * 1024


def handle(
    request: flask.Request,
    signing_secret: Callable[[], str],
    use_case: Callable[[], HandleSlackAction],
    respond: Callable[[str, str], None] = slack.respond,
) -> flask.Response:
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _answer(413, "too large")
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY_BYTES:
        return _answer(413, "too large")
    if not SignatureVerifier(signing_secret()).is_valid_request(body, dict(request.headers)):
        log.warning("slack_actions: refused a request with a missing, wrong or stale signature")
        return _answer(401, "invalid signature")
    action, response_url = _rollback_action(body)
    if action is None:
        return _answer(200, "nothing to do")
    try:
        text = use_case().handle(action).message
    except DevgemError as exc:
        text = str(exc)  # a refusal the user should read
    if response_url:
        try:
            respond(response_url, text)
        except Exception:  # the action has been taken or refused either way; only the courtesy failed
            log.warning("slack_actions: could not answer on the response_url", exc_info=True)
    return _answer(200, text)


def _rollback_action(body: bytes) -> tuple[SlackAction | None, str]:
    """The pressed Roll back button and where to answer its presser, or None for any other interaction
    (which Slack still needs a 200 for)."""
    try:
        payload = json.loads(parse_qs(body.decode())["payload"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        return None, ""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None, ""
    response_url = payload.get("response_url")
    response_url = response_url if isinstance(response_url, str) else ""
    team = payload.get("team") or {}
    user = payload.get("user") or {}
    for action in payload.get("actions") or []:
        if isinstance(action, dict) and action.get("action_id") == ROLLBACK_ACTION_ID:
            return SlackAction(
                team_id=str(team.get("id", "")) if isinstance(team, dict) else "",
                slack_user_id=str(user.get("id", "")) if isinstance(user, dict) else "",
                value=str(action.get("value", "")),
            ), response_url
    return None, ""


def _answer(status: int, text: str) -> flask.Response:
    # Ephemeral: only the person who pressed the button sees the answer, never the channel.
    response = flask.jsonify({"response_type": "ephemeral", "replace_original": False, "text": text})
    response.status_code = status
    return response
