"""Cloud Build: the lifecycle of a build, QUEUED -> WORKING -> SUCCESS / FAILURE / CANCELLED / TIMEOUT.

Every status change is published to ``cloud-builds`` exactly as Cloud Build does (build_status), and
every line the build writes goes to ``log-entry`` (build_log); what a running build does is in
build_steps. A pool of ``max_builds`` slots runs builds concurrently; the others wait in QUEUED.
Cancellation and timeouts kill the running step's process group.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import uuid
from pathlib import Path

from localcloud.build_filter import compile_filter
from localcloud.build_log import BuildLog
from localcloud.build_record import TERMINAL, Build, BuildRecord, Status, now
from localcloud.build_status import SECTION, BuildStatus
from localcloud.build_steps import run_steps
from localcloud.config import Config
from localcloud.failure import BuildFailure
from localcloud.images import Images
from localcloud.logs import LogSink
from localcloud.operations import Operation, Operations
from localcloud.pubsub import Publisher
from localcloud.rest import ApiError, to_dict, with_type
from localcloud.store import Store

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 600.0  # Cloud Build's default build timeout, in seconds
METADATA_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"


class Builder:
    def __init__(
        self,
        config: Config,
        store: Store,
        images: Images,
        publisher: Publisher,
        sink: LogSink,
        operations: Operations,
    ) -> None:
        self._config = config
        self._store = store
        self._images = images
        self._sink = sink
        self._operations = operations
        self._status = BuildStatus(store, publisher)
        self._slots = asyncio.Semaphore(config.max_builds)
        self._builds: dict[str, BuildRecord] = {}
        self._root = config.workdir / "builds"

    # ---- lifecycle -------------------------------------------------------------------------

    def restore(self) -> None:
        """Load persisted builds; ones that were running when localcloud stopped become INTERNAL_ERROR,
        published, so a deployment waiting for them does not wait forever."""
        for build_id, data in self._store.section(SECTION).items():
            build = Build.from_json(json.dumps(data), ignore_unknown_fields=True)
            rec = self._record(build)
            rec.done.set()
            self._builds[build_id] = rec
            if build.status not in TERMINAL:
                self._status.finish(rec, Status.INTERNAL_ERROR, "localcloud restarted while this build was running")

    async def shutdown(self) -> None:
        """Stop running builds (killing their processes) and mark them INTERNAL_ERROR."""
        running = [r for r in self._builds.values() if r.task is not None and not r.task.done()]
        for rec in running:
            rec.stop_reason = "shutdown"
            assert rec.task is not None
            rec.task.cancel()
        await asyncio.gather(*(r.task for r in running if r.task is not None), return_exceptions=True)

    # ---- API operations --------------------------------------------------------------------

    def create(self, project: str, location: str, build: Build) -> Operation:
        """Queue a build and return its (not done) operation; location "global" for the v1/projects form."""
        if project != self._config.project:
            raise ApiError("PERMISSION_DENIED", f"localcloud serves project {self._config.project}, not {project}")
        if not build.steps:
            raise ApiError("INVALID_ARGUMENT", "invalid build: build has no steps")
        build_id = str(uuid.uuid4())
        build.id = build_id
        build.project_id = project
        build.name = f"projects/{project}/locations/{location}/builds/{build_id}"
        build.status = Status(Status.QUEUED)
        build.create_time = now()
        build.log_url = f"{self._config.api_url}/localcloud/builds/{build_id}/log"
        if not build.timeout:
            build.timeout = {"seconds": int(DEFAULT_TIMEOUT)}
        for step in build.steps:
            step.status = Status(Status.QUEUED)
        rec = self._record(build)
        self._builds[build_id] = rec
        if location == "global":
            op_id = base64.b64encode(build_id.encode()).decode().rstrip("=")
            op_name = f"operations/build/{project}/{op_id}"
        else:
            op_name = f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"
        rec.op = self._operations.add(
            Operation(
                op_name,
                lambda: with_type(METADATA_TYPE, {"build": to_dict(rec.build)}),
                on_cancel=lambda: self._request_cancel(rec),
            )
        )
        self._status.changed(rec)
        rec.task = asyncio.create_task(self._run(rec), name=f"build-{build_id}")
        return rec.op

    def get(self, project: str, build_id: str) -> Build:
        rec = self._builds.get(build_id)
        if rec is None or rec.build.project_id != project:
            raise ApiError("NOT_FOUND", f"build {build_id} not found")
        return rec.build

    def list(self, project: str, location: str | None, filter_: str) -> list[Build]:
        """Builds of project, newest first, matching a Cloud Build list filter."""
        match = compile_filter(filter_)
        builds = [
            r.build
            for r in self._builds.values()
            if r.build.project_id == project and (location is None or f"/locations/{location}/" in r.build.name)
        ]
        builds = [b for b in builds if match(b)]
        builds.sort(key=lambda b: b.create_time, reverse=True)
        return builds

    async def cancel(self, project: str, build_id: str) -> Build:
        """Cancel a queued or running build and wait until it is CANCELLED; a finished build is returned as is."""
        rec = self._builds.get(build_id)
        if rec is None or rec.build.project_id != project:
            raise ApiError("NOT_FOUND", f"build {build_id} not found")
        if self._request_cancel(rec):
            await rec.done.wait()
        return rec.build

    def log_text(self, build_id: str) -> Path | None:
        path = self._log_path(build_id)
        return path if build_id in self._builds and path.exists() else None

    # ---- running a build -------------------------------------------------------------------

    def _record(self, build: Build) -> BuildRecord:
        log_ = BuildLog(self._log_path(build.id), self._sink, self._config.project, build.project_id, build.id)
        return BuildRecord(build, log_)

    def _log_path(self, build_id: str) -> Path:
        return self._root / build_id / "log.txt"

    def _request_cancel(self, rec: BuildRecord) -> bool:
        """Ask a queued or running build to stop; False when it already finished."""
        if rec.build.status in TERMINAL or rec.task is None or rec.task.done():
            return False
        rec.stop_reason = rec.stop_reason or "cancel"
        rec.task.cancel()
        return True

    async def _run(self, rec: BuildRecord) -> None:
        """Wait for a slot, run the steps within the build's timeout, and turn the outcome into a status."""
        build = rec.build
        finish = self._status.finish
        timeout = build.timeout.total_seconds() or DEFAULT_TIMEOUT
        image_dir = self._config.workdir / "images" / build.id
        deadline: asyncio.Timeout | None = None
        try:
            async with self._slots:
                build.status = Status(Status.WORKING)
                build.start_time = now()
                self._status.changed(rec)
                async with asyncio.timeout(timeout) as deadline:
                    await run_steps(build, self._root / build.id, image_dir, self._images, rec.log.line)
            finish(rec, Status.SUCCESS, "")
        except BuildFailure as f:
            rec.log.line("", f"ERROR: {f.detail}", severity="ERROR")
            finish(rec, Status.FAILURE, f.detail, f.failure_type)
        except TimeoutError:
            if deadline is None or not deadline.expired():
                log.exception("build %s failed", build.id)
                finish(rec, Status.INTERNAL_ERROR, "internal error in localcloud; see its log")
            else:
                detail = f"build exceeded its timeout of {timeout:g}s"
                rec.log.line("", f"ERROR: {detail}", severity="ERROR")
                finish(rec, Status.TIMEOUT, detail)
        except asyncio.CancelledError:
            if rec.stop_reason == "cancel":
                rec.log.line("", "Build cancelled")
                finish(rec, Status.CANCELLED, "build cancelled")
            else:
                finish(rec, Status.INTERNAL_ERROR, "localcloud stopped while this build was running")
        except Exception as e:
            log.exception("build %s failed", build.id)
            finish(rec, Status.INTERNAL_ERROR, f"internal error in localcloud: {e}")
        # The checkout is not needed once the image has its own copy; a failed image is not kept.
        await asyncio.to_thread(shutil.rmtree, self._root / build.id / "src", True)
        if build.status != Status.SUCCESS:
            await asyncio.to_thread(shutil.rmtree, image_dir, True)
