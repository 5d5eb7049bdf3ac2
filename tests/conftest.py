"""Shared fixtures. `stack` starts the whole local platform once per test session, on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.api_client import Api
from devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("devgem")
    with Stack(state) as running:
        yield running


@pytest.fixture()
def api(stack: Stack, request: pytest.FixtureRequest) -> Api:
    """A fresh tenant per test, so tests never see each other's data."""
    return Api(stack, tenant=f"t-{abs(hash(request.node.nodeid)) % 10**8}")


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repos")
