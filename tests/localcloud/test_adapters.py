"""Devgem's own production adapters (devgem.adapters.cloud_build, cloud_run), unchanged, against localcloud."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devgem import config
from devgem.adapters import cloud_build, cloud_run
from devgem.domain.rollback import RevisionDeleted
from tests.localcloud.conftest import PROJECT, PYTHON_APP, REGION, Server, wait_build


def _clear_caches() -> None:
    for fn in (config.settings, cloud_build._client, cloud_run._client, cloud_run._revisions):
        fn.cache_clear()


@pytest.fixture()
def adapters(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DEVGEM_PROJECT", PROJECT)
    monkeypatch.setenv("DEVGEM_REGION", REGION)
    monkeypatch.setenv("DEVGEM_CLOUD_BUILD_ENDPOINT", server.api_url)
    monkeypatch.setenv("DEVGEM_CLOUD_RUN_ENDPOINT", server.api_url)
    _clear_caches()
    yield
    _clear_caches()


def test_submit_find_roll_out_and_roll_back(
    adapters: None, server: Server, cb: Any, make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"main.py": PYTHON_APP, "requirements.txt": ""})
    images = []
    for dep in ("a1", "a2"):
        image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/adapted:{dep}"
        request = cloud_build.BuildRequest(dep, "app1", str(repo), "main", "", image)
        build_id = cloud_build.submit(request)
        assert cloud_build.find_build_for(dep) == build_id
        assert wait_build(cb, build_id).status.name == "SUCCESS"
        images.append(image)

    labels = {"devgem-app": "app1"}
    first = cloud_run.roll_out(cloud_run.Rollout("adapted", "adapted-a1", images[0], labels))
    assert first.uri == f"http://adapted.localhost:{server.router_port}"
    assert server.get("adapted").text == "hello from adapted-a1 of adapted"
    cloud_run.roll_out(cloud_run.Rollout("adapted", "adapted-a2", images[1], labels))
    assert server.get("adapted").text == "hello from adapted-a2 of adapted"
    again = cloud_run.roll_out(cloud_run.Rollout("adapted", "adapted-a2", images[1], labels))  # idempotent
    assert again.revision == "adapted-a2"
    cloud_run.roll_out(cloud_run.Rollout("adapted", "adapted-a1", images[0], labels))  # rollback, no rebuild
    assert server.get("adapted").text == "hello from adapted-a1 of adapted"


def test_move_traffic_back_to_an_existing_revision_and_the_next_roll_out_unpins(
    adapters: None, server: Server, python_image: str
) -> None:
    labels = {"devgem-app": "app2"}
    for rev in ("moved-r1", "moved-r2"):
        cloud_run.roll_out(cloud_run.Rollout("moved", rev, python_image, labels))
    assert server.get("moved").text == "hello from moved-r2 of moved"

    back = cloud_run.move_traffic("moved", "moved-r1")  # a rollback: no new revision, no build

    assert back.revision == "moved-r1" and back.uri == f"http://moved.localhost:{server.router_port}"
    assert server.get("moved").text == "hello from moved-r1 of moved"
    assert cloud_run.move_traffic("moved", "moved-r1").revision == "moved-r1"  # again: nothing to do
    with pytest.raises(RevisionDeleted, match="revision moved-gone was deleted"):
        cloud_run.move_traffic("moved", "moved-gone")
    cloud_run.roll_out(cloud_run.Rollout("moved", "moved-r3", python_image, labels))  # the next deploy
    assert server.get("moved").text == "hello from moved-r3 of moved"
