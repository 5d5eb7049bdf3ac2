"""A Slack user pressed "Roll back" on an incident message: act as the Devgem user they are, or refuse.

Slack vouches (by its signature, checked by the entry point) only for who pressed the button, not
for what the button says or whether that person may touch the app. So the Slack user must be mapped
to a user of the tenant the button names (tenants/{t}/slackUsers), and the rollback runs as that
user, through the same use case as the api and the CLI, which checks the app is the tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass

from devgem.adapters.slack import parse_rollback_value
from devgem.domain.identity import Identity
from devgem.usecases.ports import RollsBack, SlackUsers


@dataclass(frozen=True)
class SlackAction:
    """One pressed button, as the entry point read it from a verified interactivity payload."""

    team_id: str
    slack_user_id: str
    value: str


@dataclass(frozen=True)
class Outcome:
    done: bool
    message: str  # shown to the Slack user


class HandleSlackAction:
    def __init__(self, users: SlackUsers, roll_back: RollsBack) -> None:
        self._users = users
        self._roll_back = roll_back

    def handle(self, action: SlackAction) -> Outcome:
        choice = parse_rollback_value(action.value)
        user_id = (
            self._users.user_for(choice.tenant_id, action.team_id, action.slack_user_id)
            if action.slack_user_id
            else None
        )
        if user_id is None:
            return Outcome(
                False,
                f"Your Slack account (<@{action.slack_user_id}>) is not linked to a Devgem user of this workspace's "
                "Devgem account, so nothing was rolled back. Ask an admin to link it, or roll back with "
                f"`devgem rollback {choice.app_id} --to {choice.to}`.",
            )
        self._roll_back.roll_back(Identity(choice.tenant_id, user_id), choice.app_id, choice.to)
        return Outcome(True, f"Rolled back to {choice.to}, as requested by <@{action.slack_user_id}>.")
