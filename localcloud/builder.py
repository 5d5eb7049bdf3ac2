"""Cloud Build: the lifecycle of a build, QUEUED -> WORKING -> SUCCESS / FAILURE / CANCELLED / TIMEOUT.

Every status change is published to ``cloud-builds`` exactly as Cloud Build does (data: the Build
as JSON; attributes buildId and status), and every line the build writes goes to ``log-entry`` as
a LogEntry of resource type ``build``. A pool of ``max_builds`` slots runs builds concurrently; the
others wait in QUEUED. Cancellation and timeouts kill the running step's process group.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from google.cloud.devtools import cloudbuild_v1

from localcloud import buildpacks, fetch
from localcloud.build_filter import compile_filter
from localcloud.config import Config
from localcloud.failure import BuildFailure
from localcloud.images import Images
from localcloud.logs import LogSink, build_resource, log_name, make_entry
from localcloud.operations import Operation, Operations
from localcloud.pubsub import Publisher
from localcloud.rest import ApiError, to_dict, with_type
from localcloud.store import Store

log = logging.getLogger(__name__)

Build = cloudbuild_v1.Build
Status = cloudbuild_v1.Build.Status
BUILDS_TOPIC = "cloud-builds"
TERMINAL = {Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED, Status.EXPIRED}
DEFAULT_TIMEOUT = 600.0  # Cloud Build's default build timeout, in seconds
METADATA_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"
BUILD_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.Build"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Record:
    build: Build
    op: Operation | None = None
    task: asyncio.Task[None] | None = None
    stop_reason: str = ""  # "cancel" or "shutdown" once someone asked the build to stop
    seq: int = 0  # lines written, for stable insertIds
    log_file: IO[str] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class _PackStep:
    index: int
    image: str
    path: str
    env: dict[str, str]


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
        self._publisher = publisher
        self._sink = sink
        self._operations = operations
        self._slots = asyncio.Semaphore(config.max_builds)
        self._builds: dict[str, _Record] = {}
        self._root = config.workdir / "builds"

    # ---- lifecycle -------------------------------------------------------------------------

    def restore(self) -> None:
        """Load persisted builds; ones that were running when localcloud stopped become INTERNAL_ERROR,
        published, so a deployment waiting for them does not wait forever."""
        for build_id, data in self._store.section("builds").items():
            build = Build.from_json(json.dumps(data), ignore_unknown_fields=True)
            rec = _Record(build)
            rec.done.set()
            self._builds[build_id] = rec
            if build.status not in TERMINAL:
                self._finish(rec, Status.INTERNAL_ERROR, "localcloud restarted while this build was running")

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
        rec = _Record(build)
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
        self._changed(rec)
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
        path = self._root / build_id / "log.txt"
        return path if build_id in self._builds and path.exists() else None

    # ---- running a build -------------------------------------------------------------------

    def _request_cancel(self, rec: _Record) -> bool:
        """Ask a queued or running build to stop; False when it already finished."""
        if rec.build.status in TERMINAL or rec.task is None or rec.task.done():
            return False
        rec.stop_reason = rec.stop_reason or "cancel"
        rec.task.cancel()
        return True

    async def _run(self, rec: _Record) -> None:
        build = rec.build
        timeout = build.timeout.total_seconds() or DEFAULT_TIMEOUT
        deadline: asyncio.Timeout | None = None
        try:
            async with self._slots:
                build.status = Status(Status.WORKING)
                build.start_time = now()
                self._changed(rec)
                async with asyncio.timeout(timeout) as deadline:
                    await self._execute(rec)
            self._finish(rec, Status.SUCCESS, "")
        except BuildFailure as f:
            self._line(rec, "", f"ERROR: {f.detail}", severity="ERROR")
            self._finish(rec, Status.FAILURE, f.detail, f.failure_type)
        except TimeoutError:
            if deadline is None or not deadline.expired():
                log.exception("build %s failed", build.id)
                self._finish(rec, Status.INTERNAL_ERROR, "internal error in localcloud; see its log")
            else:
                detail = f"build exceeded its timeout of {timeout:g}s"
                self._line(rec, "", f"ERROR: {detail}", severity="ERROR")
                self._finish(rec, Status.TIMEOUT, detail)
        except asyncio.CancelledError:
            if rec.stop_reason == "cancel":
                self._line(rec, "", "Build cancelled")
                self._finish(rec, Status.CANCELLED, "build cancelled")
            else:
                self._finish(rec, Status.INTERNAL_ERROR, "localcloud stopped while this build was running")
        except Exception as e:
            log.exception("build %s failed", build.id)
            self._finish(rec, Status.INTERNAL_ERROR, f"internal error in localcloud: {e}")
        # The checkout is not needed once the image has its own copy; a failed image is not kept.
        await asyncio.to_thread(shutil.rmtree, self._root / build.id / "src", True)
        if build.status != Status.SUCCESS:
            await asyncio.to_thread(shutil.rmtree, self._config.workdir / "images" / build.id, True)

    async def _execute(self, rec: _Record) -> None:
        build = rec.build
        pack = find_pack_step(build)
        git = build.source.git_source
        if not git.url:
            raise BuildFailure("FETCH_SOURCE_FAILED", "localcloud builds only from source.gitSource; none was given")
        work = self._root / build.id
        src = work / "src"
        if work.exists():
            shutil.rmtree(work / "src", ignore_errors=True)

        self._line(rec, "", "FETCHSOURCE")
        started = now()
        commit = await fetch.fetch(git.url, git.revision, src, lambda s, t: self._line(rec, "FETCHSOURCE", t))
        build.source_provenance.resolved_git_source = cloudbuild_v1.GitSource(
            url=git.url, revision=commit, dir_=git.dir_
        )
        build.timing["FETCHSOURCE"] = cloudbuild_v1.TimeSpan(start_time=started, end_time=now())
        base = resolve_inside(src, git.dir_)
        if base is None or not base.is_dir():
            raise BuildFailure("FETCH_SOURCE_FAILED", f"directory {git.dir_} not found in repository")

        self._line(rec, "", "BUILD")
        build_started = now()
        step = build.steps[pack.index]
        label = f"Step #{pack.index}"
        step.status = Status(Status.WORKING)
        step.timing = cloudbuild_v1.TimeSpan(start_time=now())
        self._line(rec, label, f"Starting {label}")
        app = resolve_inside(base, str(Path(step.dir_ or ".") / pack.path))
        where = "the repository root" if not git.dir_ and pack.path in ("", ".") else f"directory {git.dir_ or '.'}"
        try:
            if app is None or not app.is_dir():
                raise BuildFailure("USER_BUILD_STEP", f"directory {pack.path} not found in {where}")
            out = self._config.workdir / "images" / build.id
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            artifact = await buildpacks.build(
                app,
                out,
                image=pack.image,
                build_id=build.id,
                where=where,
                build_env={**env_list(step.env), **pack.env},
                on_line=lambda s, t: self._line(rec, label, t),
            )
        except BuildFailure:
            step.status = Status(Status.FAILURE)
            step.timing.end_time = now()
            raise
        step.status = Status(Status.SUCCESS)
        step.timing.end_time = now()
        self._line(rec, label, f"Finished {label}")
        self._line(rec, "", "PUSH")
        self._images.put(artifact)
        self._line(rec, "", f"Pushed {pack.image}")
        build.timing["BUILD"] = cloudbuild_v1.TimeSpan(start_time=build_started, end_time=now())
        self._line(rec, "", "DONE")

    # ---- status and logs -------------------------------------------------------------------

    def _finish(self, rec: _Record, status: int, detail: str, failure_type: str = "") -> None:
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
        self._changed(rec)
        if rec.log_file is not None:
            rec.log_file.close()
            rec.log_file = None
        if rec.op is not None:
            if status == Status.SUCCESS:
                rec.op.succeed(with_type(BUILD_TYPE, to_dict(build)))
            else:
                op_status = {Status.CANCELLED: "CANCELLED", Status.TIMEOUT: "DEADLINE_EXCEEDED"}.get(status, "UNKNOWN")
                name = Status(status).name
                rec.op.fail(op_status, f"Build {name}: {detail}" if detail else f"Build {name}")
        rec.done.set()

    def _changed(self, rec: _Record) -> None:
        """Persist the build and publish its new status, as Cloud Build notifies cloud-builds."""
        build = rec.build
        data = to_dict(build)
        self._store.put("builds", build.id, data)
        self._publisher.publish(
            BUILDS_TOPIC,
            json.dumps(data, separators=(",", ":")).encode(),
            {"buildId": build.id, "status": build.status.name},
            retry_missing_topic=60.0,
        )

    def _line(self, rec: _Record, step: str, text: str, severity: str = "INFO") -> None:
        build = rec.build
        rec.seq += 1
        if rec.log_file is None:
            path = self._root / build.id / "log.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            rec.log_file = path.open("a", encoding="utf-8")
        rec.log_file.write(f"{step}: {text}\n" if step and step != "FETCHSOURCE" else f"{text}\n")
        rec.log_file.flush()
        self._sink.emit(
            make_entry(
                log_name=log_name(self._config.project, "cloudbuild"),
                resource=build_resource(build.project_id, build.id),
                insert_id=f"{build.id}-{rec.seq:08d}",
                line=text,
                severity=severity,
                labels={"build_step": step} if step else {},
            )
        )


def find_pack_step(build: Build) -> _PackStep:
    """The step that runs pack: its image (the arg after "build"), --path and --env."""
    for i, step in enumerate(build.steps):
        if not step.name.split("@")[0].split(":")[0].endswith("/pack"):
            continue
        args = list(step.args)
        if "build" not in args or args.index("build") + 1 >= len(args):
            raise BuildFailure("USER_BUILD_STEP", f"step #{i} ({step.name}) has no image after 'build'")
        image = args[args.index("build") + 1]
        path, env = ".", {}
        for j, arg in enumerate(args):
            nxt = args[j + 1] if j + 1 < len(args) else ""
            if arg in ("--path", "-p") and nxt:
                path = nxt
            elif arg.startswith("--path="):
                path = arg.split("=", 1)[1]
            elif arg in ("--env", "-e") and "=" in nxt:
                k, v = nxt.split("=", 1)
                env[k] = v
        return _PackStep(i, image, path, env)
    names = ", ".join(s.name for s in build.steps) or "none"
    raise BuildFailure(
        "USER_BUILD_STEP",
        f"only buildpacks (pack) builds can run locally: no step runs .../pack (steps: {names})",
    )


def resolve_inside(root: Path, relative: str) -> Path | None:
    """root/relative, or None when relative escapes root (an absolute path or '..')."""
    target = (root / relative.lstrip("/")).resolve() if relative else root.resolve()
    with contextlib.suppress(ValueError):
        target.relative_to(root.resolve())
        return target
    return None


def env_list(items: Any) -> dict[str, str]:
    """A BuildStep's env ["K=V", ...] as a dict."""
    return dict(item.split("=", 1) for item in items if "=" in item)
