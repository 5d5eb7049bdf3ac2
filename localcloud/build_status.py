"""A build's status changes: persisted, published to ``cloud-builds`` as Cloud Build does, and its
operation settled once the build is over."""

from __future__ import annotations

import json

from localcloud.build_record import Build, BuildRecord, Status, now
from localcloud.pubsub import Publisher
from localcloud.rest import to_dict, with_type
from localcloud.store import Store

BUILDS_TOPIC = "cloud-builds"
SECTION = "builds"
BUILD_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.Build"


class BuildStatus:
    def __init__(self, store: Store, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher

    def changed(self, rec: BuildRecord) -> None:
        """Persist the build and publish its new status (data: the Build JSON; attributes buildId, status)."""
        build = rec.build
        data = to_dict(build)
        self._store.put(SECTION, build.id, data)
        self._publisher.publish(
            BUILDS_TOPIC,
            json.dumps(data, separators=(",", ":")).encode(),
            {"buildId": build.id, "status": build.status.name},
            retry_missing_topic=60.0,
        )

    def finish(self, rec: BuildRecord, status: int, detail: str, failure_type: str = "") -> None:
        """The build's terminal status: steps still open take it, the log closes, the operation settles."""
        build = rec.build
        build.status = Status(status)
        build.status_detail = detail
        build.finish_time = now()
        if failure_type:
            failure = getattr(Build.FailureInfo.FailureType, failure_type)
            build.failure_info = Build.FailureInfo(type_=failure, detail=detail)
        for step in build.steps:
            if step.status in (Status.QUEUED, Status.WORKING):
                step.status = Status(status)
        self.changed(rec)
        rec.log.close()
        if rec.op is not None:
            if status == Status.SUCCESS:
                rec.op.succeed(with_type(BUILD_TYPE, to_dict(build)))
            else:
                op_status = {Status.CANCELLED: "CANCELLED", Status.TIMEOUT: "DEADLINE_EXCEEDED"}.get(status, "UNKNOWN")
                name = Status(status).name
                rec.op.fail(op_status, f"Build {name}: {detail}" if detail else f"Build {name}")
        rec.done.set()
