"""Connecting a repository: validated input, a service name unique across tenants, nothing half-stored."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from devgem.domain import naming
from devgem.domain.errors import Conflict, InvalidInput
from devgem.domain.identity import Identity
from devgem.usecases.connect_app import NAME_ATTEMPTS, ConnectApp
from tests.unit.fakes import START, FakeApps, FakeClock

ANA = Identity("tenant-a", "ana")
APP_ID = "app000000001"


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    apps: FakeApps = field(default_factory=FakeApps)
    allow_local_repos: bool = False

    @property
    def use_case(self) -> ConnectApp:
        return ConnectApp(
            self.apps,
            "https://{service}.apps.example.com",
            self.allow_local_repos,
            now=self.clock.now,
            new_id=lambda: APP_ID,
        )


@pytest.fixture()
def world() -> World:
    return World()


def test_a_repository_becomes_an_app_named_after_it(world: World) -> None:
    app = world.use_case.connect(ANA, {"repoUrl": "https://github.com/ana/shop.git"})
    service = naming.service_name("shop", "tenant-a", APP_ID, 0)
    assert app == {
        "id": APP_ID,
        "tenantId": "tenant-a",
        "name": "shop",
        "repoUrl": "https://github.com/ana/shop.git",
        "branch": "main",
        "subdirectory": "",
        "serviceName": service,
        "url": f"https://{service}.apps.example.com",
        "liveRevision": None,
        "liveDeploymentId": None,
        "createdBy": "ana",
        "createdAt": START,
        "updatedAt": START,
    }
    assert world.apps.service_names == {service: ("tenant-a", APP_ID)}


def test_a_taken_service_name_moves_on_to_the_next_candidate(world: World) -> None:
    taken = naming.service_name("shop", "tenant-a", APP_ID, 0)
    world.apps.service_names[taken] = ("tenant-b", "other")
    app = world.use_case.connect(ANA, {"repoUrl": "https://github.com/ana/shop", "name": "shop"})
    assert app["serviceName"] == naming.service_name("shop", "tenant-a", APP_ID, 1) != taken


def test_when_every_candidate_is_taken_it_says_to_pick_another_name_and_stores_nothing(world: World) -> None:
    for attempt in range(NAME_ATTEMPTS):
        world.apps.service_names[naming.service_name("shop", "tenant-a", APP_ID, attempt)] = ("x", "y")
    with pytest.raises(Conflict, match="try another app name"):
        world.use_case.connect(ANA, {"repoUrl": "https://github.com/ana/shop"})
    assert world.apps.apps == {}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"repoUrl": 42},
        {"repoUrl": "http://github.com/ana/shop"},
        {"repoUrl": "https://github.com/ana/shop", "branch": "--upload-pack=evil"},
        {"repoUrl": "https://github.com/ana/shop", "branch": "main;rm -rf /"},
        {"repoUrl": "https://github.com/ana/shop", "subdirectory": "../../etc"},
        {"repoUrl": "https://github.com/ana/shop", "name": 7},
        {"repoUrl": "https://github.com/ana/shop", "name": "x" * 101},
        {"repoUrl": "https://github.com/ana/shop", "name": {}},
        {"repoUrl": "https://github.com/ana/shop", "name": []},
        {"repoUrl": "https://github.com/ana/shop", "name": False},
        {"repoUrl": "https://github.com/ana/shop", "name": 0},
        {"repoUrl": "https://github.com/ana/shop", "name": None},
        {"repoUrl": "https://github.com/ana/shop", "name": ""},
        {"repoUrl": "https://github.com/ana/shop", "name": "   "},
        {"repoUrl": "https://github.com/ana/shop", "branch": {}},
        {"repoUrl": "https://github.com/ana/shop", "branch": None},
        {"repoUrl": "https://github.com/ana/shop", "subdirectory": []},
        {"repoUrl": "https://github.com/ana/shop", "subdirectory": None},
        {"repoUrl": "https://github.com/ana/shop", "subdirectory": False},
        {"repoUrl": {}},
        {"repoUrl": "file:///etc"},
        {"repoUrl": "/srv/repos/shop"},
        {"repoUrl": "https://169.254.169.254/computeMetadata/v1"},
        {"repoUrl": "https://metadata.google.internal/computeMetadata/v1"},
        {"repoUrl": "https://gitlab.example.org/ana/shop"},
    ],
)
def test_hostile_input_is_refused_and_stores_nothing(world: World, body: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        world.use_case.connect(ANA, body)
    assert world.apps.apps == {} and world.apps.service_names == {}


def test_local_repositories_only_where_allowed(world: World) -> None:
    world.allow_local_repos = True
    app = world.use_case.connect(ANA, {"repoUrl": "/srv/repos/shop"})
    assert app["repoUrl"] == "/srv/repos/shop" and app["name"] == "shop"


def test_local_development_still_refuses_internal_hosts(world: World) -> None:
    world.allow_local_repos = True
    with pytest.raises(InvalidInput, match="metadata server"):
        world.use_case.connect(ANA, {"repoUrl": "https://169.254.169.254/computeMetadata/v1"})
    assert world.apps.apps == {}


def test_the_git_hosts_it_is_given_are_the_ones_it_accepts(world: World) -> None:
    use_case = ConnectApp(
        world.apps, "https://{service}.apps.example.com", False, ("git.example.org",), new_id=lambda: APP_ID
    )
    with pytest.raises(InvalidInput, match=r"Devgem builds from https:// repositories on git\.example\.org \("):
        use_case.connect(ANA, {"repoUrl": "https://github.com/ana/shop"})
    assert use_case.connect(ANA, {"repoUrl": "https://git.example.org/ana/shop"})["name"] == "shop"
