"""What a build does once it has a slot: FETCHSOURCE (clone the git source), BUILD (the pack step,
run the way buildpacks would, without Docker), PUSH (the artifact becomes an image)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from google.cloud.devtools import cloudbuild_v1

from localcloud import buildpacks, fetch
from localcloud.build_record import Build, Status, now
from localcloud.failure import BuildFailure
from localcloud.images import Images
from localcloud.pack_step import env_list, find_pack_step, resolve_inside

# line(step label, text): one line of the build's log
LineWriter = Callable[[str, str], None]


async def run_steps(build: Build, work: Path, image_dir: Path, images: Images, line: LineWriter) -> None:
    """Run build in work/src, writing the image to image_dir; a BuildFailure says what went wrong."""
    pack = find_pack_step(build)
    git = build.source.git_source
    if not git.url:
        raise BuildFailure("FETCH_SOURCE_FAILED", "localcloud builds only from source.gitSource; none was given")
    src = work / "src"
    if work.exists():
        shutil.rmtree(src, ignore_errors=True)

    line("", "FETCHSOURCE")
    started = now()
    commit = await fetch.fetch(git.url, git.revision, src, lambda s, t: line("FETCHSOURCE", t))
    build.source_provenance.resolved_git_source = cloudbuild_v1.GitSource(url=git.url, revision=commit, dir_=git.dir_)
    build.timing["FETCHSOURCE"] = cloudbuild_v1.TimeSpan(start_time=started, end_time=now())
    base = resolve_inside(src, git.dir_)
    if base is None or not base.is_dir():
        raise BuildFailure("FETCH_SOURCE_FAILED", f"directory {git.dir_} not found in repository")

    line("", "BUILD")
    build_started = now()
    step = build.steps[pack.index]
    label = f"Step #{pack.index}"
    step.status = Status(Status.WORKING)
    step.timing = cloudbuild_v1.TimeSpan(start_time=now())
    line(label, f"Starting {label}")
    app = resolve_inside(base, str(Path(step.dir_ or ".") / pack.path))
    where = "the repository root" if not git.dir_ and pack.path in ("", ".") else f"directory {git.dir_ or '.'}"
    try:
        if app is None or not app.is_dir():
            raise BuildFailure("USER_BUILD_STEP", f"directory {pack.path} not found in {where}")
        shutil.rmtree(image_dir, ignore_errors=True)
        image_dir.mkdir(parents=True)
        artifact = await buildpacks.build(
            app,
            image_dir,
            image=pack.image,
            build_id=build.id,
            where=where,
            build_env={**env_list(step.env), **pack.env},
            on_line=lambda s, t: line(label, t),
        )
    except BuildFailure:
        step.status = Status(Status.FAILURE)
        step.timing.end_time = now()
        raise
    step.status = Status(Status.SUCCESS)
    step.timing.end_time = now()
    line(label, f"Finished {label}")
    line("", "PUSH")
    images.put(artifact)
    line("", f"Pushed {pack.image}")
    build.timing["BUILD"] = cloudbuild_v1.TimeSpan(start_time=build_started, end_time=now())
    line("", "DONE")
