"""Reading an app's logs through the api: the history the web app and the CLI show before following.

GET /v1/apps/{app}/logs?since=10m&deployment=ID&severity=ERROR&source=build&limit=200
  -> {"lines": [...oldest first], "cursor": chunk id to follow after, "oldest": chunk id, "truncated": bool}
`after=<cursor>` returns the lines written after a cursor instead; `before=<oldest>` pages back.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from devgem import clock
from devgem.adapters import store
from devgem.adapters.firestore_client import client
from devgem.domain import validation
from devgem.domain.errors import InvalidInput
from devgem.domain.identity import Identity
from devgem.logs import reader
from devgem.logs.entries import BUILD, RUN, SEVERITY_RANK, normalize_severity

DEFAULT_LIMIT = 200
MAX_LIMIT = 5000
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CURSOR = re.compile(r"^\d{13}(-[0-9a-f]{1,16}-\d{1,12})?$")


def read_logs(who: Identity, app_id: str, params: dict[str, Any]) -> dict[str, Any]:
    db = client()
    app = store.get_app(db, who.tenant_id, validation.identifier(app_id, "app id"))
    limit = _limit(params.get("limit"))
    deployment = params.get("deployment") or None
    if deployment is not None:
        deployment = validation.identifier(deployment, "deployment")
    severity = _severity(params.get("severity"))
    if params.get("after"):
        history = reader.after(
            db,
            who.tenant_id,
            app["id"],
            _cursor(params["after"], "after"),
            limit=limit,
            deployment_id=deployment,
            severity=severity,
        )
    else:
        history = reader.newest(
            db,
            who.tenant_id,
            app["id"],
            limit=limit,
            deployment_id=deployment,
            since=parse_since(params.get("since")),
            severity=severity,
            before=_cursor(params["before"], "before") if params.get("before") else None,
            source=_source(params.get("source")),
        )
    return {
        "appId": app["id"],
        "tenantId": who.tenant_id,
        "lines": history.lines,
        "cursor": history.cursor,
        "oldest": history.oldest,
        "truncated": history.truncated,
    }


def parse_since(value: object) -> datetime | None:
    """`10m`, `2h`, `30s`, `1d` back from now, or an RFC 3339 time."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput("since must be a duration such as 10m or 2h, or an RFC 3339 time")
    match = _DURATION.match(value.strip())
    if match:
        return clock.now() - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"since {value[:40]!r} is neither a duration such as 10m nor an RFC 3339 time") from exc
    if at.tzinfo is None:
        raise InvalidInput("since needs a time zone, for example 2026-11-26T10:00:00Z")
    return at


def _limit(value: object) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(str(value))
    except ValueError as exc:
        raise InvalidInput(f"limit must be a number from 1 to {MAX_LIMIT}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a number from 1 to {MAX_LIMIT}")
    return limit


def _severity(value: object) -> str | None:
    if value in (None, ""):
        return None
    name = normalize_severity(value)
    if name == "DEFAULT" and str(value).upper() != "DEFAULT":
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITY_RANK)}")
    return name


def _source(value: object) -> str | None:
    if value in (None, ""):
        return None
    if value not in (BUILD, RUN):
        raise InvalidInput(f"source must be {BUILD} or {RUN}")
    return str(value)


def _cursor(value: object, name: str) -> str:
    if not isinstance(value, str) or not _CURSOR.match(value):
        raise InvalidInput(f"{name} must be a cursor returned by this api")
    return value
