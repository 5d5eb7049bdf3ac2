"""Notifier until the Slack adapter (and the chat-session cards) land: it logs that an incident was
opened or escalated, so the decision to notify is visible end to end. It logs the fingerprint and
counts, never the crash's text: an app's output may hold its secrets."""

from __future__ import annotations

import logging

from devgem.domain.incidents import Incident

log = logging.getLogger(__name__)


class LogNotifier:
    def incident_opened(self, incident: Incident) -> None:
        log.warning(
            "incident %s opened: app %s, %s, %d signals",
            incident.id,
            incident.app_id,
            incident.fingerprint,
            incident.count,
        )

    def incident_escalated(self, incident: Incident) -> None:
        kind = incident.pending.kind if incident.pending else "escalated"
        log.warning(
            "incident %s %s: app %s, %s, %d signals",
            incident.id,
            kind,
            incident.app_id,
            incident.fingerprint,
            incident.count,
        )
