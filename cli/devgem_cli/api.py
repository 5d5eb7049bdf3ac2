"""The Devgem api over HTTP, with the user's token; its failures become messages the user can act on."""

from __future__ import annotations

import re
from typing import Any

import requests

from devgem_cli.config import Config
from devgem_cli.errors import CliError

_APP_ID = re.compile(r"^[a-z0-9]{6,40}$")


class Api:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.token}"

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        # A rollback waits for the URL to answer, which may take the probe's whole timeout.
        return self._call("POST", path, json=body, timeout=180)

    def _call(self, method: str, path: str, timeout: float = 60, **kwargs: Any) -> Any:
        url = self.config.api_url.rstrip("/") + path
        try:
            response = self.session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise CliError(
                f"cannot reach the Devgem api at {self.config.api_url} ({type(exc).__name__}); is it running?"
            ) from None
        if response.status_code == 401:
            raise CliError("the api refused the sign-in (expired?): run `make run` again, or set a fresh DEVGEM_TOKEN")
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise CliError(message)
        return response.json()

    def find_app(self, name_or_id: str) -> dict[str, Any]:
        apps = self.get("/v1/apps")["apps"]
        for app in apps:
            if name_or_id in (app["id"], app.get("name"), app.get("serviceName")):
                return dict(app)
        if _APP_ID.match(name_or_id):
            return dict(self.get(f"/v1/apps/{name_or_id}"))
        names = ", ".join(sorted(a.get("name", a["id"]) for a in apps)) or "none yet"
        raise CliError(f"no app named {name_or_id!r} (your apps: {names})")
