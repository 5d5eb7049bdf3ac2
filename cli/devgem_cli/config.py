"""Where the CLI connects, first found wins:
  DEVGEM_API_URL, DEVGEM_TOKEN, DEVGEM_PROJECT, DEVGEM_FIRESTORE_EMULATOR_HOST  (environment)
  $DEVGEM_CONFIG, else .devgem/cli.json in this directory or a parent, else ~/.config/devgem/cli.json
`make run` writes .devgem/cli.json for the local platform (its api, a local sign-in, the emulator).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devgem_cli.errors import CliError

CONFIG_NAME = "cli.json"


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str
    project: str
    firestore_emulator_host: str
    source: str

    @classmethod
    def load(cls) -> Config:
        path = _config_path()
        data: dict[str, Any] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read {path}: {exc}") from exc
        config = cls(
            api_url=os.environ.get("DEVGEM_API_URL") or str(data.get("apiUrl", "")),
            token=os.environ.get("DEVGEM_TOKEN") or str(data.get("token", "")),
            project=os.environ.get("DEVGEM_PROJECT") or str(data.get("project", "")),
            firestore_emulator_host=os.environ.get("DEVGEM_FIRESTORE_EMULATOR_HOST")
            or str(data.get("firestoreEmulatorHost", "")),
            source=str(path) if path else "the environment",
        )
        if not config.api_url or not config.token:
            raise CliError(
                "not signed in: start the local platform with `make run` (it writes .devgem/cli.json), "
                "or set DEVGEM_API_URL and DEVGEM_TOKEN"
            )
        return config


def _config_path() -> Path | None:
    if os.environ.get("DEVGEM_CONFIG"):
        return Path(os.environ["DEVGEM_CONFIG"])
    for directory in [Path.cwd(), *Path.cwd().parents]:
        candidate = directory / ".devgem" / CONFIG_NAME
        if candidate.is_file():
            return candidate
    home = Path.home() / ".config" / "devgem" / CONFIG_NAME
    return home if home.is_file() else None
