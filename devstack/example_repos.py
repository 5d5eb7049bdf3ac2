"""Local git repositories made from examples/, standing in for GitHub in `make run` and the tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Devgem Example",
    "GIT_AUTHOR_EMAIL": "examples@devgem.invalid",
    "GIT_COMMITTER_NAME": "Devgem Example",
    "GIT_COMMITTER_EMAIL": "examples@devgem.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=_GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(source: Path, dest: Path, branch: str = "main", message: str = "Example app") -> Path:
    """Copy `source` into `dest` as a fresh commit on `branch`; rerunning commits only what changed."""
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / ".git").exists():
        git(dest, "init", "-q", "-b", branch)
    for item in source.iterdir():
        target = dest / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    git(dest, "add", "-A")
    if git(dest, "status", "--porcelain"):
        git(dest, "commit", "-q", "-m", message)
    return dest


def example(name: str, dest_root: Path) -> Path:
    return make_repo(EXAMPLES / name, dest_root / name)
