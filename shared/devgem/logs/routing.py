"""Which app and deployment a log line belongs to, looked up once and cached briefly.

Runtime lines name their Cloud Run service: the `serviceNames/{name}` reservation holds tenantId and
appId, and the revision is named after its deployment (naming.revision_name). Build lines name their
build: the Build's tags carry `dep-<deployment>` (read through the Cloud Build API, because a build's
first lines arrive before deploy_requested has recorded its id), and the deployment document holds
tenantId and appId. A service or build Devgem does not manage is remembered too, so a flood of
foreign lines costs one lookup per cache period, not one per line.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud.devtools import cloudbuild_v1

from devgem.adapters import cloud_build, collections, store
from devgem.adapters.firestore_client import client
from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devgem.logs.chunks import Target
from devgem.logs.entries import BUILD, LogLine, RejectedLogEntry

FOUND_TTL = 300.0  # a service's app and a build's deployment never change; this bounds memory only
MISSING_TTL = 30.0  # an unknown service may be reserved later; builds are checked again as rarely
MAX_ENTRIES = 50_000
_DEPLOYMENT_ID = re.compile(r"^[0-9a-f]{12}$")

Lookup = Callable[[str], Target]


class _Cache:
    """Expiring results (a Target or a RejectedLogEntry), with one lookup at a time per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, Target | RejectedLogEntry]] = {}
        self._pending: dict[str, Future[Target]] = {}

    def get(self, key: str, lookup: Lookup) -> Target:
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] > time.monotonic():
                return _unwrap(hit[1])
            future = self._pending.get(key)
            owner = future is None
            if future is None:
                future = self._pending[key] = Future()
        if not owner:
            return future.result(timeout=60)
        try:
            value: Target | RejectedLogEntry = lookup(key)
        except RejectedLogEntry as exc:
            value = exc
        except BaseException as exc:  # transient: not cached, the caller retries
            with self._lock:
                del self._pending[key]
            future.set_exception(exc)
            raise
        ttl = MISSING_TTL if isinstance(value, RejectedLogEntry) else FOUND_TTL
        with self._lock:
            if len(self._values) >= MAX_ENTRIES:
                self._values.clear()
            self._values[key] = (time.monotonic() + ttl, value)
            del self._pending[key]
        if isinstance(value, RejectedLogEntry):
            future.set_exception(value)
            raise value
        future.set_result(value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def _unwrap(value: Target | RejectedLogEntry) -> Target:
    if isinstance(value, RejectedLogEntry):
        raise RejectedLogEntry(value.reason, str(value).partition(": ")[2])
    return value


class LineRouter:
    def __init__(self, service_lookup: Lookup | None = None, build_lookup: Lookup | None = None) -> None:
        self._services = _Cache()
        self._builds = _Cache()
        self._service_lookup = service_lookup or app_of_service
        self._build_lookup = build_lookup or deployment_of_build

    def route(self, line: LogLine) -> Target:
        if line.source == BUILD:
            assert line.build_id
            return self._builds.get(line.build_id, self._build_lookup)
        assert line.service
        app = self._services.get(line.service, self._service_lookup)
        return Target(app.tenant_id, app.app_id, deployment_of_revision(line.service, line.revision))


def deployment_of_revision(service: str, revision: str | None) -> str | None:
    """Revisions are `<service>-<deployment id>`; anything else is not tied to a deployment."""
    if not revision or not revision.startswith(service + "-"):
        return None
    suffix = revision[len(service) + 1 :]
    return suffix if _DEPLOYMENT_ID.match(suffix) else None


def app_of_service(service: str) -> Target:
    snapshot = client().collection(collections.SERVICE_NAMES).document(service).get() if _valid_id(service) else None
    data = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not data or not isinstance(data.get("tenantId"), str) or not isinstance(data.get("appId"), str):
        raise RejectedLogEntry("unmanaged-service", f"service {service[:80]!r} is not a Devgem app")
    return Target(data["tenantId"], data["appId"], None)


@lru_cache(maxsize=1)
def _builds() -> cloudbuild_v1.CloudBuildClient:
    return cloudbuild_v1.CloudBuildClient(**client_kwargs(settings().cloud_build_endpoint))


def deployment_of_build(build_id: str) -> Target:
    if not _valid_id(build_id):
        raise RejectedLogEntry("unknown-build", f"build id {build_id[:80]!r} is not valid")
    s = settings()
    try:
        build = _builds().get_build(name=f"projects/{s.project}/locations/{s.region}/builds/{build_id}")
    except (gexc.NotFound, gexc.InvalidArgument, gexc.PermissionDenied) as exc:
        raise RejectedLogEntry("unknown-build", f"build {build_id} cannot be read: {exc.code}") from exc
    deployment_id = cloud_build.deployment_id_from_tags(list(build.tags))
    if deployment_id is None or not _DEPLOYMENT_ID.match(deployment_id):
        raise RejectedLogEntry("unmanaged-build", f"build {build_id} is not a Devgem build")
    snapshot = store.deployment_ref(client(), deployment_id).get()
    data = snapshot.to_dict() if snapshot.exists else None
    if not data or not isinstance(data.get("tenantId"), str) or not isinstance(data.get("appId"), str):
        raise RejectedLogEntry("unmanaged-build", f"build {build_id} names deployment {deployment_id}, which is absent")
    return Target(data["tenantId"], data["appId"], deployment_id)


def _valid_id(value: str) -> bool:
    """Something that can be a Firestore document id and a resource name segment."""
    return 0 < len(value) <= 200 and "/" not in value and value not in (".", "..") and not value.startswith("__")
