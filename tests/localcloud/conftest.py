"""Fixtures for localcloud: the Pub/Sub emulator, a localcloud server, the real Google clients, git repos.

One localcloud subprocess serves the whole session (started exactly as devstack starts it), with
``--idle-stop 1`` so revisions that lose traffic are stopped quickly and a rollback must start them
again. Pub/Sub checks read from pull subscriptions on ``cloud-builds`` and ``log-entry``, created
before localcloud starts so no message is missed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.cloud.devtools import cloudbuild_v1

from localcloud.config import command
from tests import waiting

REPO = Path(__file__).resolve().parents[2]
PROJECT = "lc-test"
REGION = "us-central1"
TERMINAL = {"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """tests.waiting.wait_for, in the argument order these tests were written with."""
    return waiting.wait_for(predicate, what, timeout)


# ---- Pub/Sub emulator ------------------------------------------------------------------------


@dataclass
class Collector:
    """Every message of one subscription, gathered by a streaming pull."""

    messages: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: Any) -> None:
        with self.lock:
            self.messages.append(message)
        message.ack()

    def find(self, predicate: Callable[[Any], bool]) -> list[Any]:
        with self.lock:
            return [m for m in self.messages if predicate(m)]

    def wait(self, predicate: Callable[[Any], bool], timeout: float = 15.0, count: int = 1) -> list[Any]:
        return list(wait_for(lambda: (f := self.find(predicate)) and len(f) >= count and f, timeout, "messages"))


@dataclass
class PubSub:
    host: str
    builds: Collector
    logs: Collector


def _emulator_jar() -> str | None:
    jars = sorted(glob.glob("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"))
    return jars[-1] if jars and shutil.which("java") else None


@pytest.fixture(scope="session")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSub | None]:
    """The Pub/Sub emulator with topics cloud-builds and log-entry, or None when it is not installed."""
    jar = _emulator_jar()
    if jar is None:
        yield None
        return
    port = free_port()
    log = (tmp_path_factory.mktemp("pubsub") / "emulator.log").open("w")
    proc = subprocess.Popen(
        ["java", "-Xmx512m", "-jar", jar, "--host=127.0.0.1", f"--port={port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    host = f"127.0.0.1:{port}"
    old = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    futures = []
    try:

        def up() -> bool:
            try:
                return requests.get(f"http://{host}/", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 60, "the Pub/Sub emulator")
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

        publisher = PublisherClient()
        subscriber = SubscriberClient()
        collectors = {}
        for topic in ("cloud-builds", "log-entry"):
            topic_path = publisher.topic_path(PROJECT, topic)
            sub_path = subscriber.subscription_path(PROJECT, f"{topic}-test")
            publisher.create_topic(name=topic_path)
            subscriber.create_subscription(name=sub_path, topic=topic_path)
            collectors[topic] = Collector()
            futures.append(subscriber.subscribe(sub_path, collectors[topic].add))
        yield PubSub(host, collectors["cloud-builds"], collectors["log-entry"])
    finally:
        for f in futures:
            f.cancel()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if old is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = old


@pytest.fixture()
def needs_pubsub(pubsub: PubSub | None) -> PubSub:
    if pubsub is None:
        pytest.skip("the Pub/Sub emulator (java and google-cloud-sdk's pubsub-emulator) is not installed")
    return pubsub


# ---- localcloud --------------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[str]
    api_url: str
    router_port: int
    workdir: Path
    stderr_path: Path

    def get(self, service: str, path: str = "/", **kwargs: Any) -> requests.Response:
        """A request through the router, as a browser at http://<service>.localhost:PORT would send it."""
        headers = {"Host": f"{service}.localhost:{self.router_port}", **kwargs.pop("headers", {})}
        method = kwargs.pop("method", "GET")
        return requests.request(
            method, f"http://127.0.0.1:{self.router_port}{path}", headers=headers, timeout=30, **kwargs
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return self.proc.returncode


def start_server(workdir: Path, pubsub_host: str | None, *extra: str) -> Server:
    api_port, router_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    if pubsub_host:
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    env["PYTHONPATH"] = str(REPO)
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_path = workdir.parent / f"{workdir.name}-stderr.log"
    proc = subprocess.Popen(
        command(sys.executable, PROJECT, REGION, api_port, router_port, workdir, *extra),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr_path.open("w"),
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("localcloud ready"):
        proc.kill()
        raise AssertionError(f"localcloud did not start: {line!r}\n{stderr_path.read_text()}")
    assert line == f"localcloud ready api=http://127.0.0.1:{api_port} router=http://127.0.0.1:{router_port}"
    return Server(proc, f"http://127.0.0.1:{api_port}", router_port, workdir, stderr_path)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, pubsub: PubSub | None) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("localcloud") / "work", pubsub.host if pubsub else None, "--idle-stop", "1"
    )
    try:
        yield srv
    finally:
        code = srv.stop()
        assert code == 0, srv.stderr_path.read_text()


def _opts(server: Server) -> dict[str, Any]:
    return {
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=server.api_url),
        "credentials": AnonymousCredentials(),
    }


@pytest.fixture(scope="session")
def cb(server: Server) -> cloudbuild_v1.CloudBuildClient:
    return cloudbuild_v1.CloudBuildClient(**_opts(server))


@pytest.fixture(scope="session")
def run(server: Server) -> run_v2.ServicesClient:
    return run_v2.ServicesClient(**_opts(server))


@pytest.fixture(scope="session")
def revisions(server: Server) -> run_v2.RevisionsClient:
    return run_v2.RevisionsClient(**_opts(server))


# ---- apps in git repositories ------------------------------------------------------------------

PYTHON_APP = """\
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/crash"):
            print("crashing on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if self.path.startswith("/log"):
            print(json.dumps({"severity": "WARNING", "message": "structured " + self.path}), flush=True)
        if self.path.startswith("/flood"):
            for i in range(int(self.path.split("=")[1])):
                sys.stdout.buffer.write(b"flood %d \\xff\\n" % i)
            sys.stdout.flush()
        if self.path.startswith("/pid"):
            body = str(os.getpid())
        else:
            body = f"{os.environ.get('MESSAGE', 'hello')} from {os.environ['K_REVISION']} of {os.environ['K_SERVICE']}"
        self._send(200, body.encode())

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(201, b"echo:" + data + b" q=" + self.path.encode())

    def _send(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App", "yes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request " + self.path, flush=True)

print("app starting on port " + os.environ["PORT"], flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def commit_repo(path: Path, files: dict[str, str], branch: str = "main") -> Path:
    """A git repository at path with files committed on branch."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=" + branch]
    if not (path / ".git").exists():
        subprocess.run([*git, "init", "-q", str(path)], check=True)
    subprocess.run([*git, "-C", str(path), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(path), "commit", "-q", "-m", "app"], check=True)
    return path


@pytest.fixture()
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(files: dict[str, str], branch: str = "main") -> Path:
        return commit_repo(tmp_path / f"repo{next(counter)}", files, branch)

    return make


@pytest.fixture(scope="session")
def python_image(tmp_path_factory: pytest.TempPathFactory, cb: cloudbuild_v1.CloudBuildClient) -> str:
    """An image built once per session from the Python test app."""
    repo = commit_repo(
        tmp_path_factory.mktemp("pyapp"), {"main.py": PYTHON_APP, "requirements.txt": "# no dependencies\n"}
    )
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/pyapp:session"
    build = run_build(cb, str(repo), image)
    assert build.status.name == "SUCCESS", build.status_detail
    return image


def create_build(
    cb: cloudbuild_v1.CloudBuildClient,
    url: str,
    image: str,
    revision: str = "main",
    directory: str = "",
    tags: list[str] | None = None,
    timeout: int = 1200,
) -> Any:
    """create_build exactly as Devgem's production adapter calls it; returns the operation."""
    return cb.create_build(
        request={
            "parent": f"projects/{PROJECT}/locations/{REGION}",
            "project_id": PROJECT,
            "build": cloudbuild_v1.Build(
                source=cloudbuild_v1.Source(
                    git_source=cloudbuild_v1.GitSource(url=url, revision=revision, dir=directory)
                ),
                steps=[
                    cloudbuild_v1.BuildStep(
                        name="gcr.io/k8s-skaffold/pack",
                        args=[
                            "build",
                            image,
                            "--builder",
                            "gcr.io/buildpacks/builder:google-22",
                            "--path",
                            ".",
                            "--publish",
                        ],
                    )
                ],
                tags=tags or ["devgem", "dep-test", "app-test"],
                timeout={"seconds": timeout},
            ),
        }
    )


def wait_build(cb: cloudbuild_v1.CloudBuildClient, build_id: str, timeout: float = 60) -> Any:
    name = f"projects/{PROJECT}/locations/{REGION}/builds/{build_id}"

    def done() -> Any:
        b = cb.get_build(request={"name": name})
        return b if b.status.name in TERMINAL else None

    return wait_for(done, timeout, f"build {build_id}")


def run_build(cb: cloudbuild_v1.CloudBuildClient, url: str, image: str, **kwargs: Any) -> Any:
    op = create_build(cb, url, image, **kwargs)
    return wait_build(cb, op.metadata.build.id)


def build_json(message: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(message.data)
    return data
