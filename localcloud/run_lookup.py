"""The questions the router (and the debugging endpoint) asks about services: which, and who serves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from localcloud.run_state import RevisionState, ServiceState


def find_by_short_name(services: Iterable[ServiceState], short_name: str) -> ServiceState | None:
    """The service the router serves for host <short_name>.localhost."""
    for svc in services:
        if svc.short == short_name:
            return svc
    return None


def serving(svc: ServiceState) -> list[tuple[RevisionState, int]]:
    """(revision, percent) pairs that currently receive traffic."""
    out = []
    for status in svc.service.traffic_statuses:
        rev = svc.revisions.get(status.revision)
        if rev is not None and status.percent > 0:
            out.append((rev, status.percent))
    return out


def instances_report(services: Iterable[ServiceState]) -> list[dict[str, Any]]:
    """Every revision's instance, for debugging (GET /localcloud/instances)."""
    out = []
    for svc in services:
        percents = {r.short: p for r, p in serving(svc)}
        for rev in svc.revisions.values():
            i = rev.instance
            out.append(
                {
                    "service": svc.short,
                    "revision": rev.short,
                    "percent": percents.get(rev.short, 0),
                    "state": i.state if i else "stopped",
                    "port": i.port if i else 0,
                    "pid": i.pid if i else 0,
                    "restarts": i.restarts if i else 0,
                }
            )
    return out
