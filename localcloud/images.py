"""The local "Artifact Registry": image names mapped to what a build produced.

A build's ``pack build IMAGE --publish`` step pushes IMAGE; here it registers a directory (the app,
its venv or node_modules) and a start command under that name. Each build writes a fresh directory,
like an image digest: a revision keeps the artifact it was created from even if the tag is rebuilt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localcloud.store import Store


@dataclass(frozen=True)
class Artifact:
    image: str
    build_id: str
    kind: str  # "python", "node" or "static"
    root: Path  # the artifact directory
    cwd: Path  # where the app starts
    command: list[str]  # argv; PORT comes from the environment
    env: dict[str, str] = field(default_factory=dict)  # runtime environment added by the buildpack
    path_prepend: list[str] = field(default_factory=list)  # directories put in front of PATH

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["root"], d["cwd"] = str(self.root), str(self.cwd)
        return d

    @staticmethod
    def from_json(d: dict[str, Any]) -> Artifact:
        return Artifact(
            image=d["image"],
            build_id=d["build_id"],
            kind=d["kind"],
            root=Path(d["root"]),
            cwd=Path(d["cwd"]),
            command=list(d["command"]),
            env=dict(d.get("env", {})),
            path_prepend=list(d.get("path_prepend", [])),
        )


class Images:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._images = {name: Artifact.from_json(d) for name, d in store.section("images").items()}

    def put(self, artifact: Artifact) -> None:
        self._images[artifact.image] = artifact
        self._store.put("images", artifact.image, artifact.to_json())

    def get(self, image: str) -> Artifact | None:
        """The artifact of image; a digest reference (IMAGE@sha256:...) resolves to its name."""
        found = self._images.get(image)
        if found is None and "@" in image:
            found = self._images.get(image.split("@", 1)[0])
        if found is None and not image.rsplit("/", 1)[-1].count(":"):
            found = self._images.get(image + ":latest")
        return found if found is not None and found.root.exists() else None
