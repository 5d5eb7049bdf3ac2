"""What localcloud keeps about one build: the Build resource and the machinery of its run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.cloud.devtools import cloudbuild_v1

from localcloud.build_log import BuildLog
from localcloud.operations import Operation

Build = cloudbuild_v1.Build
Status = cloudbuild_v1.Build.Status
TERMINAL = {Status.SUCCESS, Status.FAILURE, Status.INTERNAL_ERROR, Status.TIMEOUT, Status.CANCELLED, Status.EXPIRED}


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class BuildRecord:
    build: Build
    log: BuildLog
    op: Operation | None = None
    task: asyncio.Task[None] | None = None
    stop_reason: str = ""  # "cancel" or "shutdown" once someone asked the build to stop
    done: asyncio.Event = field(default_factory=asyncio.Event)
