"""`devgem rollback APP [--to ID]`: one POST to the api, progress first, then the URL that serves again."""

from __future__ import annotations

import io
from typing import Any, ClassVar

import pytest

from devgem_cli import main as cli


class FakeApi:
    posted: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, config: object) -> None:
        pass

    def find_app(self, name: str) -> dict[str, Any]:
        return {"id": "app000000001", "name": name}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.posted.append((path, body))
        return {"id": "r1", "url": "http://shop.localhost", "revision": "shop-d1", "rollbackOf": "d1"}


@pytest.mark.parametrize(("argv", "body"), [(["shop"], {}), (["shop", "--to", "d1"], {"to": "d1"})])
def test_rollback_posts_once_and_prints_the_url(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], body: dict[str, str]
) -> None:
    FakeApi.posted = []
    monkeypatch.setattr(cli, "Api", FakeApi)
    monkeypatch.setattr(cli.Config, "load", classmethod(lambda cls: None))
    out = io.StringIO()
    args = cli.parser().parse_args(["rollback", *argv])
    assert cli.cmd_rollback(args, out) == 0
    assert FakeApi.posted == [("/v1/apps/app000000001/rollback", body)]
    assert out.getvalue().splitlines()[0].startswith("Rolling shop back to")
    assert "http://shop.localhost serves revision shop-d1 again" in out.getvalue()
