"""Live logs under faults: lines flow at 200/s while the log_entry worker is killed -9 twice.

The operator's run behind issue #15: an app writes lines at 200 a second, the worker is killed
outright (`kill -9`, as an OOM or a lost host would) twice, ten seconds apart, and restarted each
time (as Cloud Run would). Afterwards every line must be in Firestore exactly once, and paging
through `GET /v1/apps/{app}/logs?after=...` must return every line once.

The lines enter where the Log Router would put them (LogEntry JSON published to `log-entry`), so
the run takes seconds instead of a deploy's minute and measures the worker, Pub/Sub and the reader
alone. `run(stack)` is what tests/faults and `make bench-faults` both call; it reports, does not
assert:

- `lost`: lines never stored (counted in the app's chunks by insertId);
- `dup_stored`: extra copies in storage (a line stored twice counts 1);
- `dup_pages`: lines the api returned more than once across `after=` pages;
- `missing_pages`: stored lines the api paging never returned.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.cloud.pubsub_v1 import PublisherClient
from google.cloud.pubsub_v1.types import BatchSettings

from devgem import clock, topology
from devgem.adapters.firestore_client import client
from devgem.logs.chunks import id_floor, lines_of, logs_ref, rfc3339
from devstack.api_client import Api
from devstack.stack import PROJECT, Stack

WORKER = topology.worker("log_entry")
REVISION_SUFFIX = "-0123456789ab"  # the revision <service>-<deployment> names the deployment


def entry(service: str, run: str, seq: int) -> bytes:
    """A LogEntry as the Log Router publishes it for a Cloud Run revision's stdout."""
    return json.dumps(
        {
            "insertId": f"{run}-{seq:06d}",
            "logName": f"projects/{PROJECT}/logs/run.googleapis.com%2Fstdout",
            "resource": {
                "type": "cloud_run_revision",
                "labels": {"service_name": service, "revision_name": service + REVISION_SUFFIX, "location": "l"},
            },
            "timestamp": rfc3339(clock.now()),
            "severity": "INFO",
            "textPayload": f"faults {run} {seq}",
        }
    ).encode()


def stored_copies(app_id: str, run: str) -> Counter[str]:
    """How many times each of this run's insertIds is stored, over every chunk of the app."""
    copies: Counter[str] = Counter()
    for snap in logs_ref(client(), app_id).stream():
        for line in lines_of(snap.to_dict() or {}):
            insert_id = str(line.get("insertId", ""))
            if insert_id.startswith(run):
                copies[insert_id] += 1
    return copies


def page_through(api: Api, app_id: str, after: str, limit: int = 500) -> tuple[list[str], int]:
    """Every insertId the api returns, following `after=` cursors until a page brings nothing new."""
    returned: list[str] = []
    pages = 0
    cursor = after
    while True:
        response = api.call("GET", f"/v1/apps/{app_id}/logs", params={"after": cursor, "limit": limit})
        response.raise_for_status()
        body = response.json()
        pages += 1
        returned += [str(line.get("insertId")) for line in body["lines"]]
        if not body.get("cursor") or body["cursor"] == cursor:
            return returned, pages
        cursor = body["cursor"]


def run(
    stack: Stack,
    *,
    lines: int = 4000,
    rate: float = 200.0,
    kills_at: tuple[float, ...] = (8.0, 18.0),
    settle_timeout: float = 45.0,
    say: Any = print,
) -> dict[str, Any]:
    """Write `lines` at `rate`, kill -9 and restart the worker at each of `kills_at` seconds, then count.

    After the writing it waits until every line is stored or `settle_timeout` passes, and at least
    until the leases of the killed instances have run out (the subscription's ack deadline after the
    last kill, plus a margin): only then can Pub/Sub have given back all they held, so a duplicate
    made by a redelivery has had its chance to be stored before it is counted."""
    tenant = f"faults-{int(time.time() * 1000)}"
    api = Api(stack, tenant=tenant)
    app = api.create_app("https://github.com/ana/faults", name=f"faults-{int(time.time()) % 100000}")
    service, app_id = app["serviceName"], app["id"]
    run_id = f"f{int(time.time() * 1000)}"
    start_cursor = id_floor(clock.now() - timedelta(seconds=10))
    publisher = PublisherClient(batch_settings=BatchSettings(max_latency=0.005))
    topic = publisher.topic_path(PROJECT, topology.LOG_ENTRY)
    futures: list[Future[str]] = []
    killed_at: list[float] = []

    def write() -> None:
        start = time.monotonic()
        for seq in range(lines):
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(publisher.publish(topic, entry(service, run_id, seq)))

    writer = threading.Thread(target=write, name="faults-writer", daemon=True)
    started = time.monotonic()
    writer.start()
    for at in kills_at:
        delay = started + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stack.restart_worker(WORKER.name, kill=True)
        killed_at.append(time.monotonic())
        say(f"  killed -9 and restarted the worker at +{killed_at[-1] - started:.1f} s")
    writer.join(lines / rate + 60)
    for future in futures:
        future.result(timeout=60)
    written_in = time.monotonic() - started
    leases_out = (killed_at[-1] if killed_at else started) + WORKER.ack_deadline_seconds + 5
    deadline = time.monotonic() + settle_timeout
    copies = stored_copies(app_id, run_id)
    while time.monotonic() < deadline and (len(copies) < lines or time.monotonic() < leases_out):
        time.sleep(0.5)
        copies = stored_copies(app_id, run_id)
    settled_in = time.monotonic() - started
    returned, pages = page_through(api, app_id, start_cursor)
    mine = [i for i in returned if i.startswith(run_id)]
    page_counts = Counter(mine)
    expected = {f"{run_id}-{seq:06d}" for seq in range(lines)}
    lost_ids = sorted(expected - set(copies))
    result = {
        "lines": lines,
        "rate": rate,
        "kills": len(killed_at),
        "stored": len(copies),
        "lost": len(lost_ids),
        "lost_first": [int(i.rsplit("-", 1)[1]) for i in lost_ids[:20]],
        "dup_stored": sum(n - 1 for n in copies.values()),
        "returned": len(mine),
        "pages": pages,
        "dup_pages": sum(n - 1 for n in page_counts.values()),
        "missing_pages": len(set(copies) - set(page_counts)),
        "written_s": round(written_in, 1),
        "settled_s": round(settled_in, 1),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lines", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devgem-bench-faults-") as tmp, Stack(Path(tmp)) as stack:
        for n in range(args.runs):
            result = run(stack, lines=args.lines, rate=args.rate)
            print(f"run {n + 1}: " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
