"""FETCHSOURCE: clone the build's git source, as Cloud Build does for ``source.gitSource``.

The URL and revision come from the caller, so git is run without a shell, with ``--`` before the
positional arguments, and with GIT_ALLOW_PROTOCOL limiting transports (no ``ext::`` commands).
``git ls-remote`` runs first so a missing branch is reported as exactly ``branch X not found``,
which the deploy flow shows to the user, instead of git's wording.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from localcloud import procs
from localcloud.failure import BuildFailure

_ALLOWED_URL = re.compile(r"^(https?|git|ssh|file)://|^/")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")

OnLine = Callable[[str, str], None]


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ALLOW_PROTOCOL="https:http:git:ssh:file",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",
        LC_ALL="C",
    )
    return env


async def _git(args: list[str], cwd: Path, on_line: OnLine, capture: list[str] | None = None) -> int:
    def line(stream: str, text: str) -> None:
        if capture is not None:
            capture.append(text)
        on_line(stream, text)

    return await procs.run(["git", *args], cwd, git_env(), line)


async def fetch(url: str, revision: str, dest: Path, on_line: OnLine) -> str:
    """Clone url at revision (branch, tag, full ref or commit) into dest; return the commit SHA."""
    if not _ALLOWED_URL.match(url):
        raise BuildFailure(
            "FETCH_SOURCE_FAILED", f"unsupported repository URL {url!r}: use https://, file:// or a path"
        )
    remote = Path(url).as_uri() if url.startswith("/") else url  # git honours --depth over file:// only
    dest.parent.mkdir(parents=True, exist_ok=True)
    cwd = dest.parent
    output: list[str] = []
    ref = ""
    if revision:
        on_line("stdout", f"Checking that {revision} exists in {url}")
        refs: list[str] = []
        code = await _git(["ls-remote", "--", remote], cwd, lambda s, t: None if s == "stdout" else on_line(s, t), refs)
        if code != 0:
            raise BuildFailure("FETCH_SOURCE_FAILED", f"could not read repository {url}: {_last(refs)}")
        names = {line.split("\t", 1)[1] for line in refs if "\t" in line}
        if revision in names and revision.startswith("refs/"):
            ref = revision
        elif f"refs/heads/{revision}" not in names and f"refs/tags/{revision}" not in names:
            if not _SHA.match(revision):
                raise BuildFailure("FETCH_SOURCE_FAILED", f"branch {revision} not found")
            ref = revision

    if ref:  # a full ref or a commit: fetch it into an empty repository
        steps = [
            ["init", "--quiet", "--", str(dest)],
            ["-C", str(dest), "fetch", "--depth", "1", "--", remote, ref],
            ["-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"],
        ]
        for args in steps:
            if await _git(args, cwd, on_line, output) != 0:
                if _SHA.match(ref) and args[2] == "fetch":
                    await _full_clone_checkout(remote, ref, dest, on_line)
                    break
                raise BuildFailure("FETCH_SOURCE_FAILED", f"could not fetch {ref} from {url}: {_last(output)}")
    else:
        args = ["clone", "--depth", "1"]
        if revision:
            args += ["--branch", revision, "--single-branch"]
        if await _git([*args, "--", remote, str(dest)], cwd, on_line, output) != 0:
            raise BuildFailure("FETCH_SOURCE_FAILED", f"could not clone {url}: {_last(output)}")

    sha: list[str] = []
    await _git(["-C", str(dest), "rev-parse", "HEAD"], cwd, lambda s, t: None, sha)
    commit = sha[0].strip() if sha else ""
    on_line("stdout", f"HEAD is now at {commit}")
    return commit


async def _full_clone_checkout(url: str, sha: str, dest: Path, on_line: OnLine) -> None:
    """Servers that refuse to serve an unadvertised commit: clone everything, then check it out."""
    output: list[str] = []
    if dest.exists():
        shutil.rmtree(dest)
    if await _git(["clone", "--", url, str(dest)], dest.parent, on_line, output) != 0:
        raise BuildFailure("FETCH_SOURCE_FAILED", f"could not clone {url}: {_last(output)}")
    if await _git(["-C", str(dest), "checkout", "--quiet", "--detach", sha], dest.parent, on_line, output) != 0:
        raise BuildFailure("FETCH_SOURCE_FAILED", f"commit {sha} not found")


def _last(lines: list[str]) -> str:
    """The most telling line of git's output: the last fatal/error line, else the last line."""
    for line in reversed(lines):
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[-1].strip() if lines else "git failed"
