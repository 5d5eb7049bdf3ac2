"""Rolling a built image out as a Cloud Run revision and moving traffic to it.

Revisions are named after the deployment, so running a rollout twice (a redelivered message, a
restarted function) finds the revision it made the first time instead of making another.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud import run_v2

from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devgem.domain.rollback import RevisionDeleted

OPERATION_TIMEOUT_SECONDS = 300
_REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION


@dataclass(frozen=True)
class Rollout:
    service: str
    revision: str
    image: str
    labels: dict[str, str]


@dataclass(frozen=True)
class Serving:
    revision: str
    uri: str


@lru_cache(maxsize=1)
def _client() -> run_v2.ServicesClient:
    return run_v2.ServicesClient(**client_kwargs(settings().cloud_run_endpoint))


def _parent() -> str:
    s = settings()
    return f"projects/{s.project}/locations/{s.region}"


def _template(r: Rollout) -> run_v2.RevisionTemplate:
    return run_v2.RevisionTemplate(
        revision=r.revision,
        labels=r.labels,
        containers=[run_v2.Container(image=r.image)],
    )


def _all_traffic_to(revision: str) -> list[run_v2.TrafficTarget]:
    # A pinned revision, not LATEST: a later failed revision can then never take traffic by itself.
    return [run_v2.TrafficTarget(type_=_REVISION, revision=revision, percent=100)]


def roll_out(r: Rollout) -> Serving:
    """Create the revision if it does not exist yet and send all traffic to it."""
    name = f"{_parent()}/services/{r.service}"
    try:
        service = _client().get_service(name=name)
    except gexc.NotFound:
        operation = _client().create_service(
            parent=_parent(),
            service_id=r.service,
            service=run_v2.Service(
                labels=r.labels,
                template=_template(r),
                traffic=_all_traffic_to(r.revision),
                # Apps are public web apps, reached only through the wildcard load balancer.
                invoker_iam_disabled=True,
                ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER,
            ),
        )
        created = operation.result(timeout=OPERATION_TIMEOUT_SECONDS)
        return Serving(revision=r.revision, uri=created.uri)
    if any(t.revision == r.revision and t.percent == 100 for t in service.traffic_statuses):
        return Serving(revision=r.revision, uri=service.uri)
    if service.template.revision != r.revision and not _revision_exists(f"{name}/revisions/{r.revision}"):
        service.template = _template(r)
    service.traffic = _all_traffic_to(r.revision)
    updated = _client().update_service(service=service).result(timeout=OPERATION_TIMEOUT_SECONDS)
    return Serving(revision=r.revision, uri=updated.uri)


def move_traffic(service: str, revision: str) -> Serving:
    """Send all traffic to a revision that already exists: a rollback, with no new revision and no build.

    The template is left as it is, so Cloud Run makes no revision; the target serves with its own
    template (image, env, secret references) as it was when it was made. Pinned like roll_out's, and
    roll_out pins again, so the next deploy takes the traffic back.
    """
    name = f"{_parent()}/services/{service}"
    if not _revision_exists(f"{name}/revisions/{revision}"):
        raise RevisionDeleted(f"revision {revision} was deleted; deploy again to bring that code back")
    current = _client().get_service(name=name)
    if any(t.revision == revision and t.percent == 100 for t in current.traffic_statuses):
        return Serving(revision=revision, uri=current.uri)
    current.traffic = _all_traffic_to(revision)
    updated = _client().update_service(service=current).result(timeout=OPERATION_TIMEOUT_SECONDS)
    return Serving(revision=revision, uri=updated.uri)


@lru_cache(maxsize=1)
def _revisions() -> run_v2.RevisionsClient:
    return run_v2.RevisionsClient(**client_kwargs(settings().cloud_run_endpoint))


def _revision_exists(name: str) -> bool:
    try:
        _revisions().get_revision(name=name)
    except gexc.NotFound:
        return False
    return True


def connect() -> None:
    """Create the clients now (an instance's start), not on the first rollout."""
    _client()
    _revisions()
