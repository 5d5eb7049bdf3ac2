"""The deployment state machine. States only move forward, so repeated or reordered events are harmless."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    LIVE = "live"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


TERMINAL = frozenset({Status.LIVE, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED})
_RANK = {Status.QUEUED: 0, Status.BUILDING: 1, Status.DEPLOYING: 2}


def can_move(current: str, target: str) -> bool:
    """True if `target` is strictly ahead of `current`; a terminal state never moves."""
    cur, tgt = Status(current), Status(target)
    if cur in TERMINAL:
        return False
    if tgt in TERMINAL:
        return True
    return _RANK[tgt] > _RANK[cur]


# Cloud Build statuses (google.devtools.cloudbuild.v1.Build.Status names).
BUILD_IN_PROGRESS = frozenset({"STATUS_UNKNOWN", "PENDING", "QUEUED", "WORKING"})
BUILD_SUCCESS = "SUCCESS"
BUILD_FAILED = frozenset({"FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"})
BUILD_STATUSES = BUILD_IN_PROGRESS | BUILD_FAILED | {BUILD_SUCCESS}
