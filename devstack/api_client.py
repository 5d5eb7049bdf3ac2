"""The api function over HTTP, as one tenant's user: for `make run`, tests and benchmarks."""

from __future__ import annotations

from typing import Any

import requests

from devstack.stack import Stack


class Api:
    def __init__(self, stack: Stack, tenant: str, user: str = "ana") -> None:
        self.base = stack.api_url
        self.headers = {"Authorization": f"Bearer {stack.token(tenant, user)}"}
        self.tenant = tenant

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=60, **kwargs)

    def create_app(self, repo_url: str, branch: str = "main", **extra: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/apps", json={"repoUrl": repo_url, "branch": branch, **extra})
        if response.status_code != 201:
            raise RuntimeError(f"creating the app failed: {response.status_code} {response.text}")
        return dict(response.json())

    def deploy(self, app_id: str) -> dict[str, Any]:
        response = self.call("POST", f"/v1/apps/{app_id}/deployments")
        if response.status_code != 202:
            raise RuntimeError(f"requesting the deploy failed: {response.status_code} {response.text}")
        return dict(response.json())
