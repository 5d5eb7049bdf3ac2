"""Reading a build request: which step runs pack, with what image, path and env, and where that is."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud.devtools import cloudbuild_v1

from localcloud.failure import BuildFailure


@dataclass(frozen=True)
class PackStep:
    index: int
    image: str
    path: str
    env: dict[str, str]


def find_pack_step(build: cloudbuild_v1.Build) -> PackStep:
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
        return PackStep(i, image, path, env)
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
