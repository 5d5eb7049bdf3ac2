"""Versions are pinned once (functions/requirements.txt) and the dev environment installs exactly those."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==[0-9][^\s;]*$")


def _lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_runtime_is_pinned_exactly() -> None:
    unpinned = [line for line in _lines(ROOT / "functions/requirements.txt") if not PIN.match(line)]
    assert unpinned == []


def test_the_dev_environment_installs_the_runtime_pins_and_pins_nothing_of_it_again() -> None:
    dev = _lines(ROOT / "requirements-dev.txt")
    assert "-r functions/requirements.txt" in dev
    runtime = {_name(line) for line in _lines(ROOT / "functions/requirements.txt")}
    again = {_name(line) for line in dev if not line.startswith("-")} & runtime
    assert again == set(), f"pinned twice: {again}"


def test_every_dependency_of_the_shared_package_is_pinned_for_the_runtime() -> None:
    project = tomllib.loads((ROOT / "shared/pyproject.toml").read_text())["project"]
    runtime = {_name(line) for line in _lines(ROOT / "functions/requirements.txt")}
    assert {_name(d) for d in project["dependencies"]} <= runtime
