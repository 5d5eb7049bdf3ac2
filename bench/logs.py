"""Live logs, end to end: an app writes lines at 100, 1,000 and 3,000 lines/s for 20 s each.

The real path: the revision's process -> localcloud (its Log Router) -> the Pub/Sub emulator's push
-> log_entry in functions-framework -> the Firestore emulator -> a Firestore listener in this process
(devgem.log_follow, what the CLI uses). Latency is from the app writing a line (its own clock, the same
machine) to the listener seeing it. `lost` counts lines never stored; `dup` counts lines stored more
than once (before the reader's own insertId check); `writes_per_line` is chunk documents per line.

Each phase has an app of its own, so a fresh logs collection: the Firestore emulator re-evaluates a
listener against the whole collection on every commit, so phases sharing one would slow each other.

The emulator pushes each subscription through two synchronous loops, one message at a time (its
PushLoop, 100 ms idle poll), and log_entry acks a line only once it is in Firestore: so through the
emulator at most two lines are ever in flight, whatever the function does. When the backlog cannot
drain within --drain seconds, the rest is pulled off the subscription and counted: `late` lines were
still queued (not lost), and the latency figures are then lower bounds.

`--paths emulator,relay` (the default) then repeats each rate with a push relay in place of the
emulator's push loops: it streams the same subscription and pushes to the same function with up to
--concurrency requests in flight, as Pub/Sub push does for a busy endpoint. Those lines are printed
as `logs-relay:`.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from google.cloud import pubsub_v1

from bench.stats import percentile
from devgem import topology
from devgem.firestore_client import client
from devgem.log_chunks import id_floor
from devgem.log_follow import LogFollower, floor_before
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

SUBSCRIPTION = topology.function("log_entry").subscription


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

    def report(self, label: str, rate: int, gave_up_ns: int) -> str:
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
                f"  {label} {rate}/s, p50 per hop: app -> Log Router entry {hop[0]:.0f} ms, "
                f"-> Pub/Sub -> log_entry flush {hop[1]:.0f} ms, -> committed and seen by the listener {hop[2]:.0f} ms"
            )
        return (
            f"{label}: rate={rate} p50_ms={percentile(latencies, 50):.0f} p99_ms={percentile(latencies, 99):.0f} "
            f"max_ms={max(latencies, default=0):.0f} lost={lost} dup={dup} "
            f"writes_per_line={self.chunks / max(1, stored):.3f} late={self.late}"
        )


class Relay:
    """Pub/Sub push as a busy endpoint sees it: up to `concurrency` requests in flight, each message
    POSTed in the push format, acked on 2xx and nacked otherwise; on close, whatever it holds is
    nacked, so nothing stays leased (and invisible) until its ack deadline."""

    def __init__(self, subscriber: pubsub_v1.SubscriberClient, path: str, url: str, concurrency: int) -> None:
        self.subscriber, self.path = subscriber, path
        self.host = url.split("//", 1)[1].split("/", 1)[0]
        self.slots = threading.BoundedSemaphore(concurrency)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="relay")
        self.local = threading.local()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.acks: list[str] = []
        self.nacks: list[str] = []
        self.threads = [threading.Thread(target=self._pull, daemon=True) for _ in range(2)]
        self.threads.append(threading.Thread(target=self._settle, daemon=True))

    def start(self) -> Relay:
        for t in self.threads:
            t.start()
        return self

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        self.pool.shutdown(wait=True)
        with self.lock:
            self.nacks.extend(self.held)
            self.held.clear()
        self._flush()

    def _pull(self) -> None:
        while not self.stop.is_set():
            try:
                response = self.subscriber.pull(
                    request={"subscription": self.path, "max_messages": 100}, timeout=10, retry=None
                )
            except Exception:
                time.sleep(0.05)
                continue
            if not response.received_messages:
                time.sleep(0.005)
            for received in response.received_messages:
                with self.lock:
                    self.held.add(received.ack_id)
                if self.stop.is_set():
                    continue
                self.slots.acquire()
                self.pool.submit(self._push, received)

    def _push(self, received: Any) -> None:
        try:
            message = received.message
            body = json.dumps(
                {
                    "message": {
                        "data": base64.b64encode(message.data).decode(),
                        "attributes": dict(message.attributes),
                        "messageId": message.message_id,
                        "publishTime": message.publish_time.isoformat(),
                    },
                    "subscription": self.path,
                }
            )
            ok = self._post(body) < 300
            with self.lock:
                self.held.discard(received.ack_id)
                (self.acks if ok else self.nacks).append(received.ack_id)
        finally:
            self.slots.release()

    def _post(self, body: str) -> int:
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, timeout=120)
            try:
                conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                return response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    return 599
        return 599

    def _settle(self) -> None:
        while not self.stop.wait(0.02):
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            acks, self.acks = self.acks, []
            nacks, self.nacks = self.nacks, []
        for i in range(0, len(acks), 1000):
            self.subscriber.acknowledge(request={"subscription": self.path, "ack_ids": acks[i : i + 1000]})
        for i in range(0, len(nacks), 1000):
            self.subscriber.modify_ack_deadline(
                request={"subscription": self.path, "ack_ids": nacks[i : i + 1000], "ack_deadline_seconds": 0}
            )


def start_relay(stack: Stack, path: str, concurrency: int) -> subprocess.Popen[bytes]:
    """The relay runs in its own process, as Pub/Sub does: it competes for the CPU, not for our GIL."""
    args = [sys.executable, "-m", "bench.logs", "--relay-for", path, stack.function_url("log_entry"), str(concurrency)]
    relay = subprocess.Popen(args, env=stack.child_env(), stdin=subprocess.PIPE)
    time.sleep(1.0)
    return relay


def stop_relay(relay: subprocess.Popen[bytes]) -> None:
    relay.send_signal(signal.SIGTERM)
    try:
        relay.wait(30)
    except subprocess.TimeoutExpired:
        relay.kill()
        relay.wait(5)


def relay_main(path: str, url: str, concurrency: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    relay = Relay(pubsub_v1.SubscriberClient(), path, url, concurrency).start()
    stop.wait()
    relay.close()


def set_push(subscriber: pubsub_v1.SubscriberClient, path: str, endpoint: str | None) -> None:
    config = {"push_endpoint": endpoint} if endpoint else {}
    subscriber.modify_push_config(request={"subscription": path, "push_config": config})


def drain_backlog(subscriber: pubsub_v1.SubscriberClient, path: str, run: str) -> int:
    """Pull what is still queued (the push endpoint detached) and count this run's lines in it."""
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
    stack: Stack,
    api: Api,
    root: Path,
    rate: int,
    args: argparse.Namespace,
    subscriber: pubsub_v1.SubscriberClient,
    path: str,
    relay: bool,
) -> str:
    label = "logs-relay" if relay else "logs"
    app, host = deploy_bench_app(api, root, f"{label}-{rate}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  {label} {rate}/s: app {app['id']}, load average before {load}", flush=True)
    run = f"{label}-{rate}-{int(time.time())}"
    phase = Phase(run, int(rate * args.seconds))
    floor = floor_before(id_floor(_now()))
    follower = LogFollower(client(), api.tenant, app["id"], lambda lines: None, after=floor, on_chunk=phase.on_chunk)
    pusher: subprocess.Popen[bytes] | None = None
    if relay:
        set_push(subscriber, path, None)
        pusher = start_relay(stack, path, args.concurrency)
    follower.start()
    others = {"relay": pusher.pid} if pusher is not None else {}
    cpu_before = cpu_seconds(stack, others)
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
                print(f"  {label} {rate}/s: {len(phase.seen)}/{phase.expected} lines seen", flush=True)
        gave_up = time.time_ns()
        used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(stack, others).items()}
        busy = ", ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.1)
        print(f"  {label} {rate}/s, CPU seconds used: {busy}", flush=True)
        if pusher is not None:
            stop_relay(pusher)
            pusher = None
        if len(phase.seen) < phase.expected:
            set_push(subscriber, path, None)
            time.sleep(1.0)  # pushes in flight finish
            phase.late = drain_backlog(subscriber, path, run)
        set_push(subscriber, path, stack.function_url("log_entry"))
        time.sleep(1.0)  # a late duplicate would show up now
        dropped = [x for x in stack.children["localcloud"].tail(200).splitlines() if "dropped" in x]
        if dropped:
            print(f"  localcloud says: {dropped[-1]}", flush=True)
    finally:
        if pusher is not None:
            stop_relay(pusher)
        follower.stop()
    return phase.report(label, rate, gave_up)


def cpu_seconds(stack: Stack, others: dict[str, int]) -> dict[str, float]:
    """CPU time so far of each process of the stack (with its children: revisions under localcloud),
    of this one (the listener) and of `others` (the relay)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"bench (listener)": time.process_time()}
    roots = {name: child.process.pid for name, child in stack.children.items() if child.process is not None}
    for name, root in {**roots, **others}.items():
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
    parser.add_argument("--paths", default="emulator,relay", help="emulator (its push loops), relay, or both")
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight through the relay")
    parser.add_argument("--relay-for", nargs=3, metavar=("SUBSCRIPTION", "URL", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay_for:
        relay_main(args.relay_for[0], args.relay_for[1], int(args.relay_for[2]))
        return
    rates = [int(r) for r in args.rates.split(",")]
    # Production runs log_entry with hundreds of requests per instance (terraform: concurrency), so
    # gunicorn needs as many threads; its default (4 per CPU) would cap a group commit at 8 lines.
    os.environ.setdefault("THREADS", str(args.concurrency + 16))
    results: list[str] = []
    with tempfile.TemporaryDirectory(prefix="devgem-bench-logs-") as tmp, Stack(Path(tmp)) as stack:
        api = Api(stack, tenant="bench")
        subscriber = pubsub_v1.SubscriberClient()
        path = subscriber.subscription_path(PROJECT, SUBSCRIPTION)
        for relay in [p == "relay" for p in args.paths.split(",")]:
            for rate in rates:
                line = run_phase(stack, api, Path(tmp) / "repos", rate, args, subscriber, path, relay)
                print(line, flush=True)
                results.append(line)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
