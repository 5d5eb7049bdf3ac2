"""The checks Cloud Run makes before it accepts a create or update; each failure is an HTTP error."""

from __future__ import annotations

import re

from google.cloud import run_v2

from localcloud.rest import ApiError
from localcloud.run_state import ServiceState

TT = run_v2.TrafficTargetAllocationType
_SERVICE_ID = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
_REVISION_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")


def check_service_id(service_id: str) -> None:
    if not _SERVICE_ID.match(service_id or ""):
        raise ApiError(
            "INVALID_ARGUMENT",
            f"service_id {service_id!r} must be 1-49 lowercase letters, digits or hyphens, "
            "start with a letter and not end with a hyphen",
        )


def check_container(template: run_v2.RevisionTemplate) -> None:
    """One container with an image, and none of the env names Cloud Run sets itself."""
    if len(template.containers) != 1:
        raise ApiError("INVALID_ARGUMENT", "localcloud runs exactly one container per revision")
    container = template.containers[0]
    if not container.image:
        raise ApiError("INVALID_ARGUMENT", "template.containers[0].image is required")
    reserved = [e.name for e in container.env if e.name in _RESERVED_ENV]
    if reserved:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"The following reserved env names were provided: {', '.join(reserved)}. "
            "These values are automatically set by the system.",
        )


def check_revision_name(service_short: str, revision_short: str) -> None:
    if not revision_short.startswith(service_short + "-") or not _REVISION_ID.match(revision_short):
        raise ApiError(
            "INVALID_ARGUMENT",
            f"revision name {revision_short!r} must be prefixed by the service name followed by '-' "
            "(lowercase letters, digits and hyphens, at most 63 characters)",
        )


def check_traffic(svc: ServiceState, traffic: list[run_v2.TrafficTarget], new_rev: str) -> None:
    """Percents add up to 100 and every named revision exists (or is the one being created)."""
    total = 0
    for t in traffic:
        if t.percent < 0:
            raise ApiError("INVALID_ARGUMENT", "traffic percent must not be negative")
        total += t.percent
        if t.type_ == TT.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION:
            if t.revision != new_rev and t.revision not in svc.revisions:
                raise ApiError("INVALID_ARGUMENT", f"Revision named '{t.revision}' with traffic is not found.")
        elif t.type_ != TT.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
            raise ApiError("INVALID_ARGUMENT", "traffic target type must be LATEST or REVISION")
    if total != 100:
        raise ApiError("INVALID_ARGUMENT", f"traffic percents must add up to 100, not {total}")
