"""Slack without a server: the incident message's blocks, the button's value, and the interactivity
endpoint's refusals. A request that is not Slack's (forged, wrong secret, replayed, unsigned) answers
401 and reaches no use case; a signed one from an unmapped Slack user is refused in words."""

from __future__ import annotations

import json
import time
from typing import Any

import flask
import pytest

from devgem.adapters import slack
from devgem.adapters.slack import IncidentNotice, RollbackChoice, SlackConfig
from devgem.domain.errors import InvalidInput
from devgem.domain.identity import Identity
from devgem.entrypoints import slack_actions
from devgem.usecases.slack_action import HandleSlackAction, SlackAction
from devstack.slack_receiver import LOCAL_SIGNING_SECRET, interactivity_body, signed_headers
from tests.unit.fakes import FakeRollBack, FakeSlackUsers

NOTICE = IncidentNotice(
    tenant_id="t1",
    app_id="app1",
    app_name="shop",
    title="shop crashed",
    what_crashed="Container called exit(1).",
    logs_url="https://devgem.example/apps/app1/logs",
    rollback_to="dep-earlier",
    rollback_label="dep-earlier (2 hours ago)",
)


def _elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_the_incident_message_names_the_app_quotes_the_crash_and_offers_rollback_and_logs() -> None:
    blocks = slack.incident_blocks(NOTICE)
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "shop crashed"}}
    assert "Container called exit(1)." in blocks[1]["text"]["text"]
    roll, logs = _elements(blocks)
    assert roll["action_id"] == slack.ROLLBACK_ACTION_ID
    assert roll["text"]["text"] == "Roll back to dep-earlier (2 hours ago)"
    assert slack.parse_rollback_value(roll["value"]) == RollbackChoice("t1", "app1", "dep-earlier")
    assert logs["text"]["text"] == "View logs" and logs["url"] == NOTICE.logs_url


def test_with_nothing_earlier_there_is_no_rollback_button() -> None:
    no_earlier = IncidentNotice(**{**NOTICE.__dict__, "rollback_to": None})
    assert [e["action_id"] for e in _elements(slack.incident_blocks(no_earlier))] == [slack.LOGS_ACTION_ID]


def test_long_crash_text_is_clipped_to_slacks_limit_rather_than_refused() -> None:
    long = IncidentNotice(**{**NOTICE.__dict__, "what_crashed": "x" * 10_000, "title": "y" * 500})
    blocks = slack.incident_blocks(long)
    assert len(blocks[0]["text"]["text"]) == 150
    assert len(blocks[1]["text"]["text"]) == 3000


@pytest.mark.parametrize("value", ["", "not json", "[]", '{"t":"t1","a":"app1"}', '{"t":"t1","a":"app1","to":5}'])
def test_a_button_value_that_is_not_devgems_is_invalid(value: str) -> None:
    with pytest.raises(InvalidInput):
        slack.parse_rollback_value(value)


def test_the_bot_token_never_appears_in_a_config_repr() -> None:
    assert "xoxb-secret" not in repr(SlackConfig(channel="C1", token="xoxb-secret"))


# -- the use case ---------------------------------------------------------------------------------


def _action(user: str = "U1", team: str = "T1", choice: RollbackChoice | None = None) -> SlackAction:
    value = slack.rollback_value(choice or RollbackChoice("t1", "app1", "dep-earlier"))
    return SlackAction(team_id=team, slack_user_id=user, value=value)


def test_a_mapped_slack_user_rolls_back_as_their_devgem_user() -> None:
    roll_back = FakeRollBack()
    outcome = HandleSlackAction(FakeSlackUsers({("t1", "U1"): "ana"}), roll_back).handle(_action())
    assert outcome.done
    assert roll_back.calls == [(Identity("t1", "ana"), "app1", "dep-earlier")]


@pytest.mark.parametrize(
    "action",
    [
        _action(user="U-STRANGER"),  # nobody mapped them
        _action(choice=RollbackChoice("t2", "app1", "dep-earlier")),  # mapped in t1, not in the tenant named
        _action(user=""),
        _action(team="T-OTHER"),  # same user id in another workspace
    ],
)
def test_an_unmapped_slack_user_is_refused_in_words_and_nothing_rolls_back(action: SlackAction) -> None:
    roll_back = FakeRollBack()
    outcome = HandleSlackAction(FakeSlackUsers({("t1", "U1"): "ana"}, team="T1"), roll_back).handle(action)
    assert not outcome.done
    assert "not linked to a Devgem user" in outcome.message
    assert roll_back.calls == []


# -- the entry point ------------------------------------------------------------------------------


def _payload(action_id: str = slack.ROLLBACK_ACTION_ID) -> dict[str, Any]:
    return {
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "actions": [{"action_id": action_id, "value": slack.rollback_value(RollbackChoice("t1", "app1", "dep-e"))}],
    }


def _call(
    body: bytes, headers: dict[str, str], roll_back: FakeRollBack, answered: list[tuple[str, str]] | None = None
) -> flask.Response:
    use_case = HandleSlackAction(FakeSlackUsers({("t1", "U1"): "ana"}), roll_back)
    app = flask.Flask(__name__)
    sink = answered if answered is not None else []
    with app.test_request_context("/", method="POST", data=body, headers=headers):
        return slack_actions.handle(
            flask.request, lambda: LOCAL_SIGNING_SECRET, lambda: use_case, lambda url, text: sink.append((url, text))
        )


def test_a_signed_fresh_request_rolls_back() -> None:
    body, roll_back = interactivity_body(_payload()), FakeRollBack()
    response = _call(body, signed_headers(body), roll_back)
    assert response.status_code == 200
    assert roll_back.calls == [(Identity("t1", "ana"), "app1", "dep-e")]
    assert response.get_json()["response_type"] == "ephemeral"


def _forged() -> tuple[bytes, dict[str, str]]:
    body = interactivity_body(_payload())
    tampered = body.replace(b"dep-e", b"dep-x")
    return tampered, signed_headers(body)


def _wrong_secret() -> tuple[bytes, dict[str, str]]:
    body = interactivity_body(_payload())
    return body, signed_headers(body, secret="not-the-signing-secret")


def _replayed() -> tuple[bytes, dict[str, str]]:
    body = interactivity_body(_payload())
    return body, signed_headers(body, at=time.time() - 301)


def _unsigned() -> tuple[bytes, dict[str, str]]:
    return interactivity_body(_payload()), {"Content-Type": "application/x-www-form-urlencoded"}


def _no_timestamp() -> tuple[bytes, dict[str, str]]:
    body = interactivity_body(_payload())
    headers = signed_headers(body)
    del headers["X-Slack-Request-Timestamp"]
    return body, headers


@pytest.mark.parametrize("request_of", [_forged, _wrong_secret, _replayed, _unsigned, _no_timestamp])
def test_a_request_that_is_not_slacks_answers_401_and_reaches_nothing(request_of: Any) -> None:
    body, headers = request_of()
    roll_back, answered = FakeRollBack(), list[tuple[str, str]]()
    response = _call(body, headers, roll_back, answered)
    assert response.status_code == 401
    assert roll_back.calls == []
    assert answered == []  # not even a message back to a response_url the forger chose


def test_the_presser_is_answered_on_the_payloads_response_url() -> None:
    payload = {**_payload(), "response_url": "https://hooks.slack.com/actions/T1/1/x", "user": {"id": "U-NOBODY"}}
    body, roll_back, answered = interactivity_body(payload), FakeRollBack(), list[tuple[str, str]]()
    response = _call(body, signed_headers(body), roll_back, answered)
    assert response.status_code == 200
    [(url, text)] = answered
    assert url == "https://hooks.slack.com/actions/T1/1/x" and "not linked to a Devgem user" in text
    assert roll_back.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"payload=not-json",
        b"nothing=here",
        interactivity_body({"type": "view_submission"}),
        interactivity_body(_payload(action_id="something_else")),
    ],
)
def test_other_signed_interactions_are_acknowledged_and_change_nothing(body: bytes) -> None:
    roll_back = FakeRollBack()
    response = _call(body, signed_headers(body), roll_back)
    assert response.status_code == 200
    assert roll_back.calls == []


def test_a_signed_button_with_a_value_that_is_not_devgems_is_answered_in_words() -> None:
    payload = _payload()
    payload["actions"][0]["value"] = json.dumps({"t": "t1"})
    body, roll_back = interactivity_body(payload), FakeRollBack()
    response = _call(body, signed_headers(body), roll_back)
    assert response.status_code == 200
    assert "not Devgem's" in response.get_json()["text"]
    assert roll_back.calls == []


def test_a_tenants_secret_reference_is_read_locally_from_its_variable_and_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from devgem.adapters import secrets
    from devgem.config import settings

    monkeypatch.setenv("DEVGEM_SECRETS_SOURCE", "env")
    monkeypatch.setenv("DEVGEM_LOCAL_SECRET_SLACK_BOT_TOKEN", "xoxb-1")
    settings.cache_clear()
    try:
        assert secrets.tenant_secret("t1", "slack-bot-token") == "xoxb-1"
        for bad in ("../platform", "projects/p/secrets/x", "", "A" * 300):
            with pytest.raises(InvalidInput):
                secrets.tenant_secret("t1", bad)
    finally:
        settings.cache_clear()


def test_make_run_shows_a_received_message_with_its_buttons_and_thread() -> None:
    from devstack.slack_receiver import summary

    message = {"channel": "C1", "text": "shop crashed: shop", "blocks": slack.incident_blocks(NOTICE), "ts": "1.1"}
    assert summary(message) == "Slack C1: shop crashed: shop  [Roll back to dep-earlier (2 hours ago)] [View logs]"
    assert summary({"channel": "C1", "text": "Resolved", "thread_ts": "1.1"}) == "Slack C1 (thread 1.1): Resolved"


def test_make_run_follows_new_messages_only(tmp_path: Any) -> None:
    import threading

    from devstack.slack_receiver import follow

    path = tmp_path / "messages.jsonl"
    path.write_text(json.dumps({"channel": "C1", "text": "from an earlier run"}) + "\n")
    shown: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(path, shown.append, stop, 0.01))
    thread.start()
    try:
        time.sleep(0.05)
        with path.open("a") as f:
            f.write(json.dumps({"channel": "C1", "text": "new"}) + "\n")
        deadline = time.monotonic() + 5
        while not shown and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert shown == ["Slack C1: new"]
