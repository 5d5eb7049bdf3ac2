"""What ``pack build`` does, without Docker: detect the kind of app, install its dependencies, and
decide how it starts.

Detection follows the Google buildpacks closely enough that an app that builds here builds in
production: package.json means Node.js, requirements.txt / pyproject.toml (or a main.py / app.py)
means Python, a lone index.html is a static site. A repository with only a Dockerfile cannot be
built without a Docker engine, and the failure says so and what to add instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tomllib
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from localcloud import procs
from localcloud.failure import BuildFailure
from localcloud.images import Artifact

OnLine = Callable[[str, str], None]
STATIC_SERVER = Path(__file__).with_name("static_server.py")
_LOOKED_FOR = "package.json (Node.js), requirements.txt or pyproject.toml (Python), or index.html (a static site)"


def detect(app: Path, where: str) -> str:
    """The kind of app in directory app ("node", "python" or "static"), or a BuildFailure."""
    if (app / "package.json").is_file():
        return "node"
    if any((app / f).is_file() for f in ("requirements.txt", "pyproject.toml", "setup.py", "main.py", "app.py")):
        return "python"
    if (app / "index.html").is_file():
        return "static"
    if (app / "Dockerfile").is_file():
        raise BuildFailure(
            "USER_BUILD_STEP",
            f"{where} only has a Dockerfile, and local builds cannot run Docker: they build the way "
            f"Cloud Buildpacks do. Add {_LOOKED_FOR}.",
        )
    raise BuildFailure("USER_BUILD_STEP", f"no app found in {where}: looked for {_LOOKED_FOR}")


async def build(
    src: Path,
    out: Path,
    *,
    image: str,
    build_id: str,
    where: str,
    build_env: Mapping[str, str],
    on_line: OnLine,
) -> Artifact:
    """Build the app in src into the artifact directory out and return the artifact."""
    on_line("stdout", "===> DETECTING")
    kind = detect(src, where)
    on_line("stdout", f"{kind} app detected in {where}")
    app = out / "app"
    await asyncio.to_thread(shutil.copytree, src, app, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    on_line("stdout", "===> BUILDING")
    env = {**os.environ, **build_env}
    if kind == "python":
        artifact = await _python(app, out, image, build_id, env, on_line)
    elif kind == "node":
        artifact = await _node(app, out, image, build_id, env, on_line)
    else:
        artifact = Artifact(image, build_id, "static", out, app, [sys.executable, str(STATIC_SERVER), str(app)])
    on_line("stdout", "===> EXPORTING")
    on_line("stdout", f"Start command: {' '.join(artifact.command)}")
    (out / "artifact.json").write_text(json.dumps(artifact.to_json(), indent=1))
    return artifact


async def _step(argv: list[str], cwd: Path, env: Mapping[str, str], on_line: OnLine, what: str) -> None:
    """Run one build command; on failure, say what failed and quote its last line of output."""
    tail: deque[str] = deque(maxlen=1)

    def line(stream: str, text: str) -> None:
        if text.strip():
            tail.append(text.strip())
        on_line(stream, text)

    on_line("stdout", f"Running: {' '.join(argv)}")
    code = await procs.run(argv, cwd, env, line)
    if code != 0:
        last = f": {tail[0]}" if tail else ""
        raise BuildFailure("USER_BUILD_STEP", f"{what} failed (exit status {code}){last}")


def _procfile_web(app: Path) -> str | None:
    procfile = app / "Procfile"
    if not procfile.is_file():
        return None
    for line in procfile.read_text(errors="replace").splitlines():
        m = re.match(r"^\s*web\s*:\s*(.+)$", line)
        if m:
            return m.group(1).strip()
    return None


def _requirements(app: Path) -> tuple[str, list[str]] | None:
    """(what, pip args) that install the app's dependencies, or None when it declares none."""
    req = app / "requirements.txt"
    if req.is_file():
        lines = [ln.strip() for ln in req.read_text(errors="replace").splitlines()]
        if any(ln and not ln.startswith("#") for ln in lines):
            return "requirements.txt", ["-r", "requirements.txt"]
        return None
    pyproject = app / "pyproject.toml"
    if pyproject.is_file():
        try:
            data: dict[str, Any] = tomllib.loads(pyproject.read_text(errors="replace"))
        except tomllib.TOMLDecodeError as e:
            raise BuildFailure("USER_BUILD_STEP", f"pyproject.toml is not valid TOML: {e}") from e
        deps = data.get("project", {}).get("dependencies", [])
        deps = [d for d in deps if isinstance(d, str) and d.strip() and not d.strip().startswith("-")]
        if deps:
            # Only the dependencies: installing the project itself would need its build backend.
            return "pyproject.toml", [*deps]
    return None


async def _python(app: Path, out: Path, image: str, build_id: str, env: dict[str, str], on_line: OnLine) -> Artifact:
    venv = out / "venv"
    python = venv / "bin" / "python"
    web = _procfile_web(app)
    if web is not None:
        command = ["/bin/sh", "-c", web]
    elif (app / "main.py").is_file():
        command = [str(python), "main.py"]
    elif (app / "app.py").is_file():
        command = [str(python), "app.py"]
    else:
        raise BuildFailure(
            "USER_BUILD_STEP",
            "Python app found but nothing says how to start it: add a Procfile with a 'web:' line "
            "(e.g. 'web: gunicorn -b :$PORT main:app'), or a main.py or app.py that listens on $PORT",
        )
    reqs = _requirements(app)
    build_env = {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1"}
    venv_args = [sys.executable, "-m", "venv"] + ([] if reqs else ["--without-pip"]) + [str(venv)]
    await _step(venv_args, app, build_env, on_line, "creating the virtualenv")
    if reqs is None:
        on_line("stdout", "No Python dependencies declared; skipping pip install")
    else:
        what, args = reqs
        on_line("stdout", f"Installing dependencies from {what}")
        await _step([str(python), "-m", "pip", "install", *args], app, build_env, on_line, f"pip install ({what})")
    return Artifact(
        image,
        build_id,
        "python",
        out,
        app,
        command,
        env={"VIRTUAL_ENV": str(venv), "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        path_prepend=[str(venv / "bin")],
    )


async def _node(app: Path, out: Path, image: str, build_id: str, env: dict[str, str], on_line: OnLine) -> Artifact:
    try:
        package: dict[str, Any] = json.loads((app / "package.json").read_text(errors="replace"))
    except ValueError as e:
        raise BuildFailure("USER_BUILD_STEP", f"package.json is not valid JSON: {e}") from e
    if not isinstance(package, dict):
        raise BuildFailure("USER_BUILD_STEP", "package.json is not a JSON object")
    scripts = package.get("scripts") if isinstance(package.get("scripts"), dict) else {}
    assert isinstance(scripts, dict)
    main = package.get("main") if isinstance(package.get("main"), str) else None
    if "start" in scripts:
        command = ["npm", "start", "--silent"]
    elif main and (app / main).is_file():
        command = ["node", main]
    elif (app / "server.js").is_file():
        command = ["node", "server.js"]
    else:
        raise BuildFailure(
            "USER_BUILD_STEP",
            'Node.js app found but nothing says how to start it: add a "start" script to package.json '
            '(e.g. "start": "node server.js")',
        )
    npm_env = {
        **env,
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        "NPM_CONFIG_FUND": "false",
        "NPM_CONFIG_AUDIT": "false",
    }
    if package.get("dependencies") or package.get("devDependencies"):
        await _step(["npm", "install", "--no-audit", "--no-fund"], app, npm_env, on_line, "npm install")
    else:
        on_line("stdout", "No Node.js dependencies declared; skipping npm install")
    for script in ("gcp-build", "build"):
        if script in scripts:
            await _step(["npm", "run", script], app, npm_env, on_line, f"npm run {script}")
            break
    return Artifact(
        image,
        build_id,
        "node",
        out,
        app,
        command,
        env={"NODE_ENV": "production", "NPM_CONFIG_UPDATE_NOTIFIER": "false"},
        path_prepend=[str(app / "node_modules" / ".bin")],
    )
