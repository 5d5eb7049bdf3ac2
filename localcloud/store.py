"""State that outlives a restart of localcloud: builds, built images, services and revisions.

Cloud Build and Cloud Run keep their resources when a client goes away; a developer restarting the
local stack expects the same. Everything is small JSON, rewritten atomically (write, then rename)
on each change, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Store:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._data: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                loaded = json.loads(path.read_text())
                if isinstance(loaded, dict):
                    self._data = {k: v for k, v in loaded.items() if isinstance(v, dict)}
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable state file %s: %s", path, e)

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section (e.g. "builds"): key -> JSON value."""
        return dict(self._data.get(name, {}))

    def put(self, section: str, key: str, value: Any) -> None:
        self._data.setdefault(section, {})[key] = value
        self._write()

    def delete(self, section: str, key: str) -> None:
        if self._data.get(section, {}).pop(key, None) is not None:
            self._write()

    def _write(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
        os.replace(tmp, self._path)
