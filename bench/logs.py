"""Live logs, end to end: an app writes lines at 100, 1,000 and 3,000 lines/s for 20 s each.

The real path: the revision's process -> localcloud (its Log Router) -> the Pub/Sub emulator ->
the log_entry worker pulling `log-entry-pull` (functions/workers.py) -> the Firestore emulator -> a
Firestore listener in this process (devgem.logs.follow, what the CLI uses). Latency is from the app
writing a line (its own clock, the same machine) to the listener seeing it. `lost` counts lines never
stored; `dup` counts lines stored more than once (before the reader's own insertId check);
`writes_per_line` is chunk documents per line.

Each phase has an app of its own, so a fresh logs collection: the Firestore emulator re-evaluates a
listener against the whole collection on every commit, so phases sharing one would slow each other.

When a backlog cannot drain within --drain seconds, the worker is stopped and the rest pulled off the
subscription and counted: `late` lines were still queued (not lost), and the latency figures are then
lower bounds. The worker is started again for the next phase.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from google.cloud import pubsub_v1

from bench.stats import percentile
from devgem import topology
from devgem.adapters.firestore_client import client
from devgem.logs.chunks import id_floor
from devgem.logs.follow import LogFollower, floor_before
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.stack import PROJECT, Stack

BENCH_APP = """
import os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def emit(run, rate, seconds):
    total = int(rate * seconds)
    start = time.monotonic()
    for seq in range(total):
        due = start + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        print(f"bench {run} {seq} {time.time_ns()}", flush=True)


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        q = parse_qs(urlsplit(self.path).query)
        if self.path.startswith("/emit"):
            args = (q["run"][0], float(q["rate"][0]), float(q["seconds"][0]))
            threading.Thread(target=emit, args=args, daemon=True).start()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""

WORKER = topology.worker("log_entry")


@dataclass
class Phase:
    run: str
    expected: int
    written: dict[int, int] = field(default_factory=dict)  # seq -> ns written
    seen: dict[int, int] = field(default_factory=dict)  # seq -> first ns seen
    copies: dict[int, int] = field(default_factory=dict)  # seq -> times stored
    chunks: int = 0
    late: int = 0
    started_ns: int = 0
    hops: list[tuple[float, float, float]] = field(default_factory=list)  # ms: app->router, ->flush, ->seen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_chunk(self, chunk_id: str, chunk: dict[str, Any]) -> None:
        now = time.time_ns()
        flushed = chunk["writtenAt"].timestamp() * 1e9 if chunk.get("writtenAt") else now
        mine = 0
        for line in json.loads(chunk.get("lines") or "[]"):
            parts = str(line.get("text", "")).split()
            if len(parts) != 4 or parts[0] != "bench" or parts[1] != self.run:
                continue
            seq, at = int(parts[2]), int(parts[3])
            routed = datetime.fromisoformat(line["at"].replace("Z", "+00:00")).timestamp() * 1e9
            mine += 1
            with self.lock:
                self.written[seq] = at
                self.copies[seq] = self.copies.get(seq, 0) + 1
                if seq not in self.seen:
                    self.seen[seq] = now
                    self.hops.append(((routed - at) / 1e6, (flushed - routed) / 1e6, (now - flushed) / 1e6))
        if mine:
            self.chunks += 1

    def report(self, rate: int, gave_up_ns: int) -> str:
        with self.lock:
            latencies = [(self.seen[s] - self.written[s]) / 1e6 for s in self.seen]
            # A line not seen when we gave up waited at least until then; it was written on schedule.
            origin = min((self.written[s] - s * 1e9 / rate for s in self.written), default=self.started_ns)
            latencies += [
                (gave_up_ns - origin - s * 1e9 / rate) / 1e6 for s in range(self.expected) if s not in self.seen
            ]
            dup = sum(n - 1 for n in self.copies.values())
            stored = len(self.seen)
        lost = max(0, self.expected - stored - self.late)
        if self.hops:
            hop = [percentile([h[i] for h in self.hops], 50) for i in range(3)]
            print(
                f"  {rate}/s, p50 per hop: app -> Log Router entry {hop[0]:.0f} ms, "
                f"-> Pub/Sub -> worker flush {hop[1]:.0f} ms, -> committed and seen by the listener {hop[2]:.0f} ms"
            )
        return (
            f"logs: rate={rate} p50_ms={percentile(latencies, 50):.0f} p99_ms={percentile(latencies, 99):.0f} "
            f"max_ms={max(latencies, default=0):.0f} lost={lost} dup={dup} "
            f"writes_per_line={self.chunks / max(1, stored):.3f} late={self.late}"
        )


def drain_backlog(subscriber: pubsub_v1.SubscriberClient, path: str, run: str) -> int:
    """Pull what is still queued (the worker stopped) and count this run's lines in it."""
    mine = 0
    empty = 0
    while empty < 3:
        response = subscriber.pull(request={"subscription": path, "max_messages": 1000}, timeout=10, retry=None)
        if not response.received_messages:
            empty += 1
            continue
        empty = 0
        for received in response.received_messages:
            try:
                text = json.loads(received.message.data).get("textPayload", "")
            except ValueError:
                continue
            parts = str(text).split()
            mine += len(parts) == 4 and parts[0] == "bench" and parts[1] == run
        ack_ids = [r.ack_id for r in response.received_messages]
        subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
    return mine


def deploy_bench_app(api: Api, root: Path, name: str) -> tuple[dict[str, Any], str]:
    """A fresh app (and so a fresh logs collection) for a phase; returns it and its router host."""
    source = root / f"{name}-src"
    source.mkdir(parents=True)
    (source / "main.py").write_text(BENCH_APP)
    (source / "requirements.txt").write_text("\n")
    repo = example_repos.make_repo(source, root / name)
    app = api.create_app(str(repo), name=name)
    deployment = api.deploy(app["id"])
    final = watch.follow_deployment(deployment["id"], timeout=300)
    if final.get("status") != "live":
        raise SystemExit(f"the bench app did not go live: {final.get('status')}: {final.get('error')}")
    return app, final["url"].split("//", 1)[1]


def run_phase(
    stack: Stack, api: Api, root: Path, rate: int, args: argparse.Namespace, subscriber: pubsub_v1.SubscriberClient
) -> str:
    app, host = deploy_bench_app(api, root, f"logs-{rate}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  {rate}/s: app {app['id']}, load average before {load}", flush=True)
    run = f"logs-{rate}-{int(time.time())}"
    phase = Phase(run, int(rate * args.seconds))
    floor = floor_before(id_floor(_now()))
    follower = LogFollower(client(), api.tenant, app["id"], lambda lines: None, after=floor, on_chunk=phase.on_chunk)
    follower.start()
    cpu_before = cpu_seconds(stack)
    try:
        time.sleep(1.0)  # the listener is up
        query = {"run": run, "rate": rate, "seconds": args.seconds}
        phase.started_ns = time.time_ns()
        requests.get(f"{stack.router_url}/emit", params=query, headers={"Host": host}, timeout=30).raise_for_status()
        end = time.monotonic() + args.seconds + args.drain
        last_report = time.monotonic()
        while time.monotonic() < end and len(phase.seen) < phase.expected:
            time.sleep(0.25)
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                print(f"  {rate}/s: {len(phase.seen)}/{phase.expected} lines seen", flush=True)
        gave_up = time.time_ns()
        used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(stack).items()}
        busy = ", ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.1)
        print(f"  {rate}/s, CPU seconds used: {busy}", flush=True)
        if len(phase.seen) < phase.expected:
            stack.children[WORKER.name].stop()
            phase.late = drain_backlog(subscriber, subscriber.subscription_path(PROJECT, WORKER.subscription), run)
            stack.restart_worker(WORKER.name)
        time.sleep(1.0)  # a late duplicate would show up now
        dropped = [x for x in stack.children["localcloud"].tail(200).splitlines() if "dropped" in x]
        if dropped:
            print(f"  localcloud says: {dropped[-1]}", flush=True)
    finally:
        follower.stop()
    return phase.report(rate, gave_up)


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time so far of each process of the stack (with its children: revisions under localcloud)
    and of this one (the listener)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"bench (listener)": time.process_time()}
    roots = {name: child.process.pid for name, child in stack.children.items() if child.process is not None}
    for name, root in roots.items():
        pids = [root, *_descendants(root)]
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        out[name] = total
    return out


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                children += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return children


def _now() -> Any:
    from devgem import clock

    return clock.now()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="100,1000,3000")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for a backlog after the writing")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    results: list[str] = []
    with tempfile.TemporaryDirectory(prefix="devgem-bench-logs-") as tmp, Stack(Path(tmp)) as stack:
        api = Api(stack, tenant="bench")
        subscriber = pubsub_v1.SubscriberClient()
        for rate in rates:
            line = run_phase(stack, api, Path(tmp) / "repos", rate, args, subscriber)
            print(line, flush=True)
            results.append(line)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
