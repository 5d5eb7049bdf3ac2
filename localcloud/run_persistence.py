"""A service and its revisions as the JSON kept in state.json, and back, so services survive a restart."""

from __future__ import annotations

import json
from typing import Any

from google.cloud import run_v2

from localcloud.images import Artifact
from localcloud.rest import to_dict
from localcloud.run_state import RevisionState, ServiceState

SECTION = "services"


def service_to_json(svc: ServiceState) -> dict[str, Any]:
    return {
        "service": to_dict(svc.service),
        "counter": svc.counter,
        "revisions": {
            short: {
                "revision": to_dict(r.revision),
                "artifact": r.artifact.to_json() if r.artifact else None,
            }
            for short, r in svc.revisions.items()
        },
    }


def service_from_json(data: dict[str, Any]) -> ServiceState:
    """The saved service, not running; raises KeyError, ValueError or TypeError on unreadable data."""
    service = run_v2.Service.from_json(json.dumps(data["service"]), ignore_unknown_fields=True)
    svc = ServiceState(service, counter=int(data.get("counter", 0)))
    for short, r in data.get("revisions", {}).items():
        revision = run_v2.Revision.from_json(json.dumps(r["revision"]), ignore_unknown_fields=True)
        artifact = Artifact.from_json(r["artifact"]) if r.get("artifact") else None
        svc.revisions[short] = RevisionState(revision, artifact)
    service.reconciling = False
    return svc
