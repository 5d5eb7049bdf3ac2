"""Connecting a repository as an app, and reading apps back.

An app's Cloud Run service name is also its public subdomain, so it is reserved across all tenants
before the app is stored; a taken name is retried with the next candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from devgem import clock
from devgem.adapters import store
from devgem.adapters.firestore_client import client
from devgem.domain import naming, validation
from devgem.domain.errors import Conflict, InvalidInput
from devgem.domain.identity import Identity
from devgem.usecases.ports import Apps

NAME_ATTEMPTS = 5
_NAME_ABSENT = "to name the app after its repository"


@dataclass(frozen=True)
class ConnectApp:
    apps: Apps
    public_url_template: str  # "{service}" is replaced by the service name
    allow_local_repos: bool  # file:// and absolute paths: local development only
    git_hosts: tuple[str, ...] = validation.DEFAULT_GIT_HOSTS  # the only hosts repositories are fetched from
    now: Callable[[], datetime] = clock.now
    new_id: Callable[[], str] = clock.new_id

    def connect(self, who: Identity, body: dict[str, object]) -> store.Doc:
        repo_url = validation.repo_url(
            body.get("repoUrl"), allow_local=self.allow_local_repos, git_hosts=self.git_hosts
        )
        branch = validation.branch(validation.text_field(body, "branch", default="main", absent_means="to build main"))
        subdirectory = validation.subdirectory(
            validation.text_field(body, "subdirectory", default="", absent_means="to build the repository's root")
        )
        raw_name = validation.text_field(
            body, "name", default=naming.app_name_from_repo(repo_url), absent_means=_NAME_ABSENT
        )
        if not raw_name.strip() or len(raw_name) > 100:
            raise InvalidInput(f"name must be text of 1 to 100 characters; leave it out {_NAME_ABSENT}")
        app_id = self.new_id()
        service = self._reserve_service_name(raw_name, who.tenant_id, app_id)
        now = self.now()
        app = {
            "tenantId": who.tenant_id,
            "name": raw_name,
            "repoUrl": repo_url,
            "branch": branch,
            "subdirectory": subdirectory,
            "serviceName": service,
            "url": self.public_url_template.format(service=service),
            "liveRevision": None,
            "liveDeploymentId": None,
            "createdBy": who.user_id,
            "createdAt": now,
            "updatedAt": now,
        }
        self.apps.create(app_id, app)
        return {**app, "id": app_id}

    def _reserve_service_name(self, app_name: str, tenant_id: str, app_id: str) -> str:
        for attempt in range(NAME_ATTEMPTS):
            name = naming.service_name(app_name, tenant_id, app_id, attempt)
            try:
                self.apps.reserve_service_name(name, tenant_id, app_id)
                return name
            except Conflict:
                continue
        raise Conflict("could not find a free service name; try another app name")


def get_app(who: Identity, app_id: str) -> store.Doc:
    return store.get_app(client(), who.tenant_id, validation.identifier(app_id, "app id"))


def list_apps(who: Identity) -> list[store.Doc]:
    return store.list_apps(client(), who.tenant_id)
