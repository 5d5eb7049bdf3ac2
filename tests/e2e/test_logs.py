"""Build and runtime lines of a real deploy reach a Firestore listener; a failed build keeps its tail.

Every hop is a real server: the build and the revision write lines, localcloud turns them into
LogEntry JSON on `log-entry`, and the log_entry worker pulls them from the Pub/Sub emulator and writes chunks.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import requests

from devgem.adapters.firestore_client import client
from devgem.logs.follow import LogFollower
from devstack import watch
from devstack.api_client import Api
from devstack.stack import Stack
from tests.fixtures.apps import repo_with

CHATTY = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

print("\\x1b[32mstarting\\x1b[0m the chatty app", flush=True)
print("a complaint on stderr", file=sys.stderr, flush=True)
print(json.dumps({"severity": "WARNING", "message": "structured hello"}), flush=True)


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        print(f"served {self.path}", flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"chatty")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def _collect(api: Api, app: dict[str, Any], deployment_id: str, wanted: set[str], timeout: float = 60) -> list[Any]:
    """Follow a deployment's lines until a line containing each of `wanted` has been seen."""
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_lines(lines: list[dict[str, Any]]) -> None:
        got.extend(lines)
        if all(any(w in line["text"] for line in got) for w in wanted):
            done.set()

    with LogFollower(client(), api.tenant, app["id"], on_lines, deployment_id=deployment_id):
        done.wait(timeout)
    missing = {w for w in wanted if not any(w in line["text"] for line in got)}
    assert not missing, f"never saw {missing}; saw {[line['text'] for line in got]}"
    return got


def test_build_and_runtime_lines_of_a_deploy_reach_a_listener(stack: Stack, api: Api, repos: Path) -> None:
    repo = repo_with(repos, "chatty", {"main.py": CHATTY, "requirements.txt": "\n"})
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])
    final = watch.follow_deployment(deployment["id"], timeout=180)
    assert final["status"] == "live", final
    host = final["url"].split("//", 1)[1]
    assert requests.get(stack.router_url + "/hello", headers={"Host": host}, timeout=10).text == "chatty"

    lines = _collect(
        api,
        app,
        deployment["id"],
        {"===> BUILDING", "starting the chatty app", "a complaint on stderr", "structured hello", "served /hello"},
    )
    by_text = {line["text"]: line for line in lines}
    assert "starting the chatty app" in by_text  # the colour escapes were removed
    assert by_text["a complaint on stderr"]["severity"] == "ERROR"
    assert by_text["structured hello"]["severity"] == "WARNING"
    sources = {line["source"] for line in lines}
    assert sources == {"build", "run"}
    assert len({line["insertId"] for line in lines}) == len(lines)

    history = api.call("GET", f"/v1/apps/{app['id']}/logs", params={"source": "build"}).json()["lines"]
    assert history and all(line["source"] == "build" for line in history)


def test_a_failed_build_keeps_its_last_lines_on_the_deployment(api: Api, repos: Path) -> None:
    repo = repo_with(repos, "nothing-to-build", {"README.md": "no app here\n"})
    app = api.create_app(str(repo))
    deployment = api.deploy(app["id"])

    final = watch.follow_deployment(deployment["id"], timeout=180, until=lambda d: d.get("logTail") is not None)

    assert final["status"] == "failed", final
    tail = final["logTail"]
    assert 0 < len(tail) <= 50
    assert any("no app found" in line["text"] and line["severity"] == "ERROR" for line in tail), tail
    assert [line["at"] for line in tail] == sorted(line["at"] for line in tail)
