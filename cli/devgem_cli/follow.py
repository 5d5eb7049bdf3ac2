"""`devgem logs --follow`: after the history, new lines as a Firestore listener reports them (no
polling), starting where the history ended."""

from __future__ import annotations

import threading
from typing import Any

from devgem_cli.config import Config
from devgem_cli.credentials import firestore_client
from devgem_cli.errors import CliError
from devgem_cli.render import Printer


def follow(config: Config, app: dict[str, Any], history: dict[str, Any], printer: Printer, args: Any) -> int:
    from devgem.logs.chunks import SeenIds
    from devgem.logs.follow import LogFollower, Reorder, floor_before

    seen = SeenIds()
    for line in history["lines"]:
        seen.first_time(str(line.get("insertId")))
    # The listener starts a little before the history's newest chunk, for a chunk committed late by
    # another instance; lines older than what the history chose to show are not shown after it.
    after = floor_before(history["cursor"]) if history.get("cursor") else _now_floor()
    shown_from = str(history["lines"][0]["at"]) if history.get("truncated") and history["lines"] else ""

    def show(lines: list[dict[str, Any]]) -> None:
        wanted = [
            line
            for line in lines
            if (not args.source or line.get("source") == args.source) and str(line.get("at", "")) >= shown_from
        ]
        if wanted:
            printer.lines(wanted)

    reorder = Reorder(show)
    follower = LogFollower(
        firestore_client(config),
        history.get("tenantId") or app["tenantId"],
        app["id"],
        reorder.add,
        after=after,
        deployment_id=args.deployment,
        severity=args.severity,
        seen=seen,
    )
    stop = threading.Event()
    try:
        with follower:
            while not stop.wait(1.0):
                if follower.errors:
                    raise CliError(f"the log stream failed: {follower.errors[0]}")
    except KeyboardInterrupt:
        return 0
    finally:
        reorder.close()
    return 0


def _now_floor() -> str:
    from devgem import clock
    from devgem.logs.chunks import id_floor
    from devgem.logs.follow import floor_before

    return floor_before(id_floor(clock.now()))
