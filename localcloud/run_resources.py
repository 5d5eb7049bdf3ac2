"""Building the Service and Revision resources a create or update produces.

A revision is immutable: a template whose revision name exists with the same containers reuses it,
the same name with different containers is ALREADY_EXISTS, and without a name a new ``S-00001-abc``
is made only when the containers changed.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from typing import Any

from google.cloud import run_v2

from localcloud.rest import ApiError
from localcloud.run_state import RevisionState, ServiceState, State, condition, now
from localcloud.run_validation import check_revision_name

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
REVISION_TYPE = "type.googleapis.com/google.cloud.run.v2.Revision"
TT = run_v2.TrafficTargetAllocationType
# Service fields a create or update sets as sent (besides template and traffic, which are validated).
_SPEC_FIELDS = (
    "labels",
    "annotations",
    "description",
    "client",
    "client_version",
    "binary_authorization",
    "scaling",
    "invoker_iam_disabled",
    "default_uri_disabled",
    "custom_audiences",
)


def containers_key(containers: Any) -> str:
    """What makes two revisions the same: image, env, command, args and working dir of each container."""
    return json.dumps(
        [
            {
                "image": c.image,
                "env": sorted((e.name, e.value) for e in c.env),
                "command": list(c.command),
                "args": list(c.args),
                "dir": c.working_dir,
            }
            for c in containers
        ]
    )


def new_service(name: str, uri: str) -> ServiceState:
    """A service that does not exist yet: only what Cloud Run sets itself, the spec comes later."""
    return ServiceState(
        run_v2.Service(
            name=name,
            uid=str(uuid.uuid4()),
            generation=0,
            create_time=now(),
            creator="localcloud",
            uri=uri,
            urls=[uri],
        )
    )


def requested_traffic(request: run_v2.Service) -> list[run_v2.TrafficTarget]:
    """The request's traffic, or all of it to LATEST when it names none."""
    return list(request.traffic) or [run_v2.TrafficTarget(type_=TT.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=100)]


def apply_spec(
    s: run_v2.Service, request: run_v2.Service, template: run_v2.RevisionTemplate, traffic: list[run_v2.TrafficTarget]
) -> None:
    """Replace the service's whole spec with the request's (as Cloud Run's update does) and mark it reconciling."""
    s.generation += 1
    s.update_time = now()
    s.last_modifier = "localcloud"
    for name in _SPEC_FIELDS:
        if name in request:
            setattr(s, name, getattr(request, name))
        else:
            delattr(s, name)
    s.ingress = run_v2.IngressTraffic(request.ingress or run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL)
    s.launch_stage = request.launch_stage or "GA"
    s.template = template
    s.traffic = traffic
    s.reconciling = True
    s.terminal_condition = condition("Ready", State.CONDITION_RECONCILING, "Deploying revision.")


def pick_revision(svc: ServiceState, template: run_v2.RevisionTemplate) -> tuple[str, RevisionState | None]:
    """(short revision name, new revision or None when an existing one is reused)."""
    key = containers_key(template.containers)
    short = template.revision
    if short:
        check_revision_name(svc.short, short)
        existing = svc.revisions.get(short)
        if existing is not None:
            if containers_key(existing.revision.containers) != key:
                raise ApiError(
                    "ALREADY_EXISTS",
                    f"Revision named '{short}' with different configuration already exists.",
                )
            return short, None
    else:
        latest = svc.service.latest_created_revision.rsplit("/", 1)[-1]
        if latest in svc.revisions and containers_key(svc.revisions[latest].revision.containers) == key:
            return latest, None
        while True:
            svc.counter = max(svc.counter, len(svc.revisions)) + 1
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=3))
            short = f"{svc.short}-{svc.counter:05d}-{suffix}"
            if short not in svc.revisions:
                break
    return short, new_revision(svc.service.name, short, template)


def new_revision(service_name: str, short: str, template: run_v2.RevisionTemplate) -> RevisionState:
    t = now()
    revision = run_v2.Revision(
        name=f"{service_name}/revisions/{short}",
        uid=str(uuid.uuid4()),
        generation=1,
        labels=dict(template.labels),
        annotations=dict(template.annotations),
        create_time=t,
        update_time=t,
        launch_stage="GA",
        service=service_name,
        scaling=template.scaling,
        max_instance_request_concurrency=template.max_instance_request_concurrency or 80,
        timeout=template.timeout or {"seconds": 300},
        service_account=template.service_account,
        containers=list(template.containers),
        execution_environment=template.execution_environment,
        conditions=[condition("Ready", State.CONDITION_RECONCILING, "Deploying revision.")],
        observed_generation=1,
        reconciling=True,
        etag=str(uuid.uuid4()),
        creator="localcloud",
    )
    return RevisionState(revision)
