"""Submitting and finding builds through the Cloud Build API.

The build fetches the source itself from the git URL (source.gitSource): no function ever clones
or uploads a user's code. Buildpacks turn the source into an image pushed to Artifact Registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud.devtools import cloudbuild_v1
from google.protobuf import json_format

from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devgem.domain.deployment import BUILD_TIMEOUT

BUILD_TIMEOUT_SECONDS = int(BUILD_TIMEOUT.total_seconds())


@dataclass(frozen=True)
class BuildRequest:
    deployment_id: str
    app_id: str
    repo_url: str
    branch: str
    subdirectory: str
    image: str


def deployment_tag(deployment_id: str) -> str:
    return f"dep-{deployment_id}"


def deployment_id_from_tags(tags: list[str]) -> str | None:
    for tag in tags:
        if tag.startswith("dep-"):
            return tag.removeprefix("dep-")
    return None


@lru_cache(maxsize=1)
def _client() -> cloudbuild_v1.CloudBuildClient:
    return cloudbuild_v1.CloudBuildClient(**client_kwargs(settings().cloud_build_endpoint))


def _parent() -> str:
    s = settings()
    return f"projects/{s.project}/locations/{s.region}"


def submit(req: BuildRequest) -> str:
    """Start the build and return its id without waiting for it (build_finished hears the outcome)."""
    s = settings()
    build = cloudbuild_v1.Build(
        source=cloudbuild_v1.Source(
            git_source=cloudbuild_v1.GitSource(url=req.repo_url, revision=req.branch, dir=req.subdirectory)
        ),
        steps=[
            cloudbuild_v1.BuildStep(
                name="gcr.io/k8s-skaffold/pack",
                args=["build", req.image, "--builder", s.builder_image, "--path", ".", "--publish"],
            )
        ],
        tags=["devgem", deployment_tag(req.deployment_id), f"app-{req.app_id}"],
        timeout={"seconds": BUILD_TIMEOUT_SECONDS},
    )
    operation = _client().create_build(request={"parent": _parent(), "project_id": s.project, "build": build})
    return str(operation.metadata.build.id)


def find_build_for(deployment_id: str) -> str | None:
    """The build an earlier, interrupted attempt already submitted, if any."""
    request = {
        "parent": _parent(),
        "project_id": settings().project,
        "filter": f'tags="{deployment_tag(deployment_id)}"',
    }
    for build in _client().list_builds(request=request):
        return str(build.id)
    return None


def get(build_id: str) -> cloudbuild_v1.Build | None:
    """The build as Cloud Build itself reports it (None if it has no such build): the only account of a
    build that is trusted, as anyone able to publish could write a message that looks like one."""
    s = settings()
    try:
        build: cloudbuild_v1.Build = _client().get_build(
            request={"name": f"{_parent()}/builds/{build_id}", "project_id": s.project, "id": build_id}
        )
    except gexc.NotFound:
        return None
    return build


def cancel(build_id: str) -> None:
    s = settings()
    _client().cancel_build(request={"name": f"{_parent()}/builds/{build_id}", "project_id": s.project, "id": build_id})


def parse_build(data: bytes) -> cloudbuild_v1.Build:
    """The Build resource Cloud Build publishes to the cloud-builds topic; ValueError if it is not one."""
    if not isinstance(json.loads(data), dict):  # a clear JSONDecodeError before proto-plus's own message
        raise ValueError("the message data is JSON but not an object")
    try:
        build: cloudbuild_v1.Build = cloudbuild_v1.Build.from_json(data, ignore_unknown_fields=True)
    except json_format.ParseError as exc:  # not a ValueError: without this a bad message is retried forever
        raise ValueError(str(exc)) from exc
    return build


def connect() -> None:
    """Create the client now (an instance's start), not on the first build."""
    _client()
