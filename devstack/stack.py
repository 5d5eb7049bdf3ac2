"""Start and stop the whole local platform.

Every server is real and listens on loopback: the emulators, localcloud (Cloud Build, Cloud Run,
Log Router, url_mask router) and one functions-framework process per entry point, with the Pub/Sub
emulator pushing to them. Clients in this process get the same settings through `env`.
"""

from __future__ import annotations

import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from devgem import topology
from devgem.adapters import secrets
from devgem.entrypoints import pull_worker
from devstack import dev_tokens, emulators, slack_receiver, wiring
from devstack.processes import Child, free_ports, http_ok, wait_until
from devstack.schedules import Scheduler
from localcloud.config import command as localcloud_command

REPO = Path(__file__).resolve().parent.parent
PROJECT = "devgem-local"
LOCAL_SLACK_TOKEN_SECRET = "slack-bot-token"  # the reference a local tenant's Slack integration names
REGION = "us-central1"


@dataclass
class Ports:
    firestore: int
    pubsub: int
    cloud_api: int
    router: int
    functions: dict[str, int]
    slack: int

    @classmethod
    def fixed(cls, base: int = 8680, router: int = 8080) -> Ports:
        """Well-known ports for `make run`, so URLs stay the same across restarts."""
        names = [f.name for f in topology.FUNCTIONS]
        return cls(base, base + 1, base + 2, router, {n: base + 10 + i for i, n in enumerate(names)}, base + 3)

    @classmethod
    def free(cls) -> Ports:
        """Any free ports, so tests never collide with a running `make run`."""
        firestore, pubsub, cloud_api, router, slack, *functions = free_ports(5 + len(topology.FUNCTIONS))
        return cls(
            firestore,
            pubsub,
            cloud_api,
            router,
            {f.name: p for f, p in zip(topology.FUNCTIONS, functions, strict=True)},
            slack,
        )


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    state_dir: Path
    ports: Ports = field(default_factory=Ports.free)
    persist_firestore: bool = False
    children: dict[str, Child] = field(default_factory=dict)
    scheduler: Scheduler | None = None

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.router}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.functions['api']}"

    @property
    def slack_url(self) -> str:
        """The local Slack receiver (devstack/slack_receiver.py): GET /messages, POST /control/rate-limit."""
        return f"http://127.0.0.1:{self.ports.slack}"

    def function_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.functions[name]}/"

    @property
    def env(self) -> dict[str, str]:
        _, cert = dev_tokens.ensure_keys(self.state_dir / "auth")
        cloud = f"http://127.0.0.1:{self.ports.cloud_api}"
        return {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "DEVGEM_PROJECT": PROJECT,
            "DEVGEM_REGION": REGION,
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.ports.firestore}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.ports.pubsub}",
            "DEVGEM_CLOUD_BUILD_ENDPOINT": cloud,
            "DEVGEM_CLOUD_RUN_ENDPOINT": cloud,
            "DEVGEM_AUTH_MODE": "dev",
            "DEVGEM_DEV_AUTH_CERT": str(cert),
            "DEVGEM_PUBLIC_URL_TEMPLATE": f"http://{{service}}.localhost:{self.ports.router}",
            "DEVGEM_IMAGE_TEMPLATE": "localhost/devgem/{service}:{deployment}",
            "DEVGEM_ALLOW_LOCAL_REPOS": "1",
            "DEVGEM_PROBE_TIMEOUT_SECONDS": "30",
            "DEVGEM_SLACK_API_URL": f"{self.slack_url}/api/",
            "DEVGEM_LOGS_URL_TEMPLATE": f"{self.api_url}/v1/apps/{{app}}/logs",
            "DEVGEM_SLACK_SIGNING_SECRET": slack_receiver.LOCAL_SIGNING_SECRET,
            # Tenants' secret references resolve from DEVGEM_LOCAL_SECRET_<NAME>: a tenant whose Slack
            # integration names "slack-bot-token" posts with the receiver's local token.
            "DEVGEM_SECRETS_SOURCE": "env",
            secrets.local_variable(LOCAL_SLACK_TOKEN_SECRET): slack_receiver.LOCAL_BOT_TOKEN,
        }

    def child_env(self) -> dict[str, str]:
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return {**os.environ, **self.env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}

    def apply_env(self) -> None:
        """Point this process's clients (Firestore, Pub/Sub, devgem settings) at the stack."""
        os.environ.update(self.env)
        from devgem.config import settings

        settings.cache_clear()

    def token(self, tenant_id: str, user_id: str = "dev-user") -> str:
        key, _ = dev_tokens.ensure_keys(self.state_dir / "auth")
        return dev_tokens.mint(key, PROJECT, tenant_id, user_id)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, progress: bool = False) -> Stack:
        def say(message: str) -> None:
            if progress:
                print(f"  {message}", flush=True)

        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = self.child_env()
        data_dir = self.firestore_data_dir if self.persist_firestore else None
        try:
            self.children["firestore"] = emulators.firestore(self.ports.firestore, self.log_dir, env, data_dir).start()
            self.children["pubsub"] = emulators.pubsub(self.ports.pubsub, self.log_dir, env).start()
            self.children["localcloud"] = self._localcloud(env).start()
            self.children["slack"] = self._slack(env).start()
            for fn in topology.FUNCTIONS:
                self.children[fn.name] = self._function(fn.name, env).start()
            for worker in topology.WORKERS:
                self.children[worker.name] = self._worker(worker.name, env).start()
            with ThreadPoolExecutor(max_workers=4) as pool:
                waits = [
                    pool.submit(self._wait_http, "firestore", f"http://127.0.0.1:{self.ports.firestore}/", 60),
                    pool.submit(self._wait_http, "pubsub", f"http://127.0.0.1:{self.ports.pubsub}/", 60),
                ]
                for w in waits:
                    w.result()
            say(f"Firestore emulator  127.0.0.1:{self.ports.firestore}")
            say(f"Pub/Sub emulator    127.0.0.1:{self.ports.pubsub}")
            self.apply_env()  # before the workers look for their subscriptions
            wiring.create_topology(PROJECT, {f.name: self.function_url(f.name) for f in topology.event_functions()})
            say("topics and subscriptions created from devgem.topology")
            self._wait_port("localcloud", self.ports.router, 60)
            say(f"localcloud          api http://127.0.0.1:{self.ports.cloud_api}  router {self.router_url}")
            self._wait_log("slack", slack_receiver.STARTED, 60)
            say(f"Slack receiver      {self.slack_url}  (messages: {self.slack_url}/messages)")
            for fn in topology.FUNCTIONS:
                self._wait_port(fn.name, self.ports.functions[fn.name], 60)
                say(f"function {fn.name:<18} {self.function_url(fn.name)}")
            for worker in topology.WORKERS:
                self._wait_log(worker.name, pull_worker.STARTED, 60)
                say(f"worker {worker.name:<20} pulls {worker.subscription}")
            self.scheduler = Scheduler(self.function_url).start()
            for fn in topology.scheduled_functions():
                say(f"schedule {fn.name:<18} every {fn.local_every_seconds:g} s (production: {fn.schedule})")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_http(self, name: str, url: str, timeout: float) -> None:
        wait_until(http_ok(url), timeout, name, self.children[name])

    def _wait_port(self, name: str, port: int, timeout: float) -> None:
        wait_until(lambda: _port_open(port), timeout, name, self.children[name])

    def _wait_log(self, name: str, text: str, timeout: float) -> None:
        child = self.children[name]
        wait_until(lambda: text in child.output(), timeout, name, child)

    def _localcloud(self, env: dict[str, str]) -> Child:
        args = localcloud_command(
            sys.executable, PROJECT, REGION, self.ports.cloud_api, self.ports.router, self.state_dir / "localcloud"
        )
        return Child("localcloud", args, env, self.log_dir / "localcloud.log", cwd=REPO)

    def _slack(self, env: dict[str, str]) -> Child:
        args = [sys.executable, "-m", "devstack.slack_receiver", str(self.ports.slack), str(self.state_dir)]
        return Child("slack receiver", args, env, self.log_dir / "slack-receiver.log", cwd=REPO)

    def _function(self, name: str, env: dict[str, str]) -> Child:
        args = [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            name,
            "--source",
            str(REPO / "functions" / "main.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports.functions[name]),
        ]
        return Child(f"function {name}", args, env, self.log_dir / f"function-{name}.log", cwd=REPO)

    def _worker(self, name: str, env: dict[str, str]) -> Child:
        args = [sys.executable, str(REPO / "functions" / "workers.py"), name]
        return Child(f"worker {name}", args, env, self.log_dir / f"worker-{name}.log", cwd=REPO)

    def restart_function(self, name: str, kill: bool = True) -> None:
        """Stop a function as a crash would (SIGKILL) and start a fresh instance on the same port."""
        self.children[name].kill() if kill else self.children[name].stop()
        self.start_again(name)

    def restart_worker(self, name: str, kill: bool = False) -> None:
        """Stop a worker as Cloud Run does (SIGTERM) or as a crash would (SIGKILL), and start another."""
        self.children[name].kill() if kill else self.children[name].stop()
        self.start_again(name)

    def kill(self, name: str) -> None:
        """SIGKILL one function, worker or localcloud, with what it started: an outage until start_again."""
        self.children[name].kill()

    def start_again(self, name: str) -> None:
        """Start a fresh instance of a stopped function, worker or localcloud, and wait until it serves."""
        env = self.child_env()
        if name == "localcloud":
            self.children[name] = self._localcloud(env).start()
            self._wait_port(name, self.ports.router, 60)
        elif name == "slack":
            self.children[name] = self._slack(env).start()
            self._wait_log(name, slack_receiver.STARTED, 60)
        elif name in self.ports.functions:
            self.children[name] = self._function(name, env).start()
            self._wait_port(name, self.ports.functions[name], 60)
        else:
            self.children[name] = self._worker(name, env).start()
            self._wait_log(name, pull_worker.STARTED, 60)

    @property
    def firestore_data_dir(self) -> Path:
        return self.state_dir / "firestore-data"

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        # Functions first (nothing new starts), then localcloud (its revisions), then the emulators,
        # after Firestore's data has been saved when persistence is on.
        if self.persist_firestore and self.children.get("firestore") and self.children["firestore"].alive():
            try:
                emulators.export_firestore(f"127.0.0.1:{self.ports.firestore}", PROJECT, self.firestore_data_dir)
            except Exception as exc:  # stopping must go on whatever happens
                print(f"devstack: could not save Firestore data: {exc}", file=sys.stderr)
        order = [n for n in self.children if n not in ("localcloud", "pubsub", "firestore")]
        for name in [*order, "localcloud", "pubsub", "firestore"]:
            child = self.children.get(name)
            if child is not None:
                child.stop(timeout=30)
        self.children.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
