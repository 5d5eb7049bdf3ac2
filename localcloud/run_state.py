"""What localcloud keeps in memory for a Cloud Run service and its revisions.

The protos are what the API returns; the rest (the built artifact, the running instance, the idle
timer, the lock that serialises deploys) is localcloud's own bookkeeping around them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.cloud import run_v2

from localcloud.images import Artifact
from localcloud.revisions import Instance

State = run_v2.Condition.State


def now() -> datetime:
    return datetime.now(UTC)


def condition(type_: str, state: int, message: str = "") -> run_v2.Condition:
    return run_v2.Condition(type_=type_, state=state, message=message, last_transition_time=now())


@dataclass
class RevisionState:
    revision: run_v2.Revision
    artifact: Artifact | None = None
    instance: Instance | None = None
    idle_timer: asyncio.TimerHandle | None = None

    @property
    def short(self) -> str:
        return str(self.revision.name.rsplit("/", 1)[-1])

    @property
    def ready(self) -> bool:
        return any(c.type_ == "Ready" and c.state == State.CONDITION_SUCCEEDED for c in self.revision.conditions)


@dataclass
class ServiceState:
    service: run_v2.Service
    revisions: dict[str, RevisionState] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    counter: int = 0  # the highest revision number handed out, for S-00001-abc names

    @property
    def short(self) -> str:
        return str(self.service.name.rsplit("/", 1)[-1])
