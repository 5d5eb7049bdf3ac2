"""`python -m devstack run`: the whole platform locally, deploying the example app end to end.

It starts every server, signs in as a local tenant, connects examples/hello-python (as a local git
repository) through the api, deploys it, prints each state as Firestore reports it, then fetches the
URL through the router. It keeps running until Ctrl-C, SIGTERM or a closed terminal (SIGHUP), then
stops everything it started, saving Firestore's data first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from devgem import clock
from devgem.adapters.firestore_client import client
from devgem.adapters.probe import answers
from devgem.logs.chunks import id_floor, rfc3339
from devgem.logs.follow import LogFollower, Reorder, floor_before
from devstack import dev_tokens, emulators, example_repos, slack_receiver, watch
from devstack.api_client import Api
from devstack.emulators import MissingPrerequisite
from devstack.processes import port_is_free
from devstack.stack import PROJECT, REPO, Ports, Stack
from devstack.stop_signals import StopRequested, StopSignals

TENANT = "local-tenant"
USER = "dev-user"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the platform and deploy the example app")
    run.add_argument("--state-dir", type=Path, default=REPO / ".devgem")
    run.add_argument("--example", default="hello-python")
    run.add_argument("--router-port", type=int, default=int(os.environ.get("DEVGEM_ROUTER_PORT", "8080")))
    run.add_argument("--free-ports", action="store_true", help="any free ports (tests, or beside another run)")
    run.add_argument("--exit-after-deploy", action="store_true", help="stop once the example is live (for CI)")
    sub.add_parser("check", help="say which prerequisites are missing and how to get them")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return _check()
        return _run(args)
    except MissingPrerequisite as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2


def _check() -> int:
    emulators.firestore_jar()
    emulators.pubsub_jar()
    emulators.java()
    if not shutil.which("git"):
        raise MissingPrerequisite("git is needed to build apps locally: sudo apt-get install git")
    return 0


def _run(args: argparse.Namespace) -> int:
    ports = Ports.free() if args.free_ports else Ports.fixed(router=args.router_port)
    busy = [
        p
        for p in (ports.firestore, ports.pubsub, ports.cloud_api, ports.router, ports.slack, *ports.functions.values())
        if not port_is_free(p)
    ]
    if busy:
        print(
            f"devstack: ports {busy} are in use. Is another `make run` running? Stop it, or pass "
            "--router-port / set DEVGEM_ROUTER_PORT.",
            file=sys.stderr,
        )
        return 2
    stack = Stack(args.state_dir, ports=ports, persist_firestore=True)
    signals = StopSignals(hangup_log=stack.log_dir / "devstack.log")
    running = False
    with signals.installed():
        try:
            print("Starting the Devgem platform locally (logs in .devgem/logs/):", flush=True)
            started = time.monotonic()
            stack.start(progress=True)
            print(f"Platform up in {time.monotonic() - started:.1f} s.\n", flush=True)
            _write_cli_config(stack)
            ok = _deploy_example(stack, args.example)
            if args.exit_after_deploy or not ok:
                return 0 if ok else 1
            _show_slack_messages(stack)
            print("\nDevgem is running. Press Ctrl-C to stop every process it started.", flush=True)
            print(
                "Try the watching loop in another terminal: make demo (crash -> Slack alert -> Roll back).", flush=True
            )
            running = True
            signals.wait()
        except StopRequested as stop:
            with contextlib.suppress(OSError):  # a terminal that has gone away
                print(f"\n{stop.signal.name}: stopping...", flush=True)
            return 0 if running else 128 + stop.signal
        finally:
            signals.shield()
            stack.stop()
    return 0


def _show_slack_messages(stack: Stack) -> None:
    """Print what the local Slack receiver gets while the platform runs, so an incident is seen here."""
    messages = stack.state_dir / "slack" / "messages.jsonl"
    print(f"Slack messages the local receiver gets appear below (all of them: {stack.slack_url}/messages).")
    threading.Thread(
        target=slack_receiver.follow,
        args=(messages, lambda line: print(f"  {line}", flush=True), threading.Event()),
        name="devstack-slack-messages",
        daemon=True,  # ends with the process; it only reads a file
    ).start()


def _deploy_example(stack: Stack, example: str) -> bool:
    repo = example_repos.example(example, stack.state_dir / "repos")
    api = Api(stack, TENANT, USER)
    app = _find_or_create_app(api, str(repo))
    print(f"App {app['name']} ({app['id']}) from {repo}")
    deployment = api.deploy(app["id"])
    print(f"Deployment {deployment['id']} requested; following it and its build's lines in Firestore:", flush=True)
    with _progress(app, deployment["id"]) as show_status:
        final = watch.follow_deployment(deployment["id"], on_change=show_status)
        time.sleep(0.5)  # the last lines of a build may trail its status by a moment
    if final.get("timedOut"):
        print(f"\nNo final state after 10 minutes; last: {final.get('status')}", file=sys.stderr)
        return False
    if final.get("status") != "live":
        print(f"\nThe deployment ended {final.get('status')}: {final.get('error')}", file=sys.stderr)
        return False
    url = final["url"]
    ok, seen = answers(url, 10)
    print(
        f"\nLive at {url}  ({seen}; *.localhost is loopback: open it in a browser, or "
        f"curl -H 'Host: {url.split('//')[1]}' {stack.router_url}/)"
    )
    print(f"Its logs, live:  .venv/bin/devgem logs {app['name']} --follow  (the CLI reads .devgem/cli.json)")
    return ok


@contextlib.contextmanager
def _progress(app: dict[str, Any], deployment_id: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Print a deployment's states and its build's lines as one stream in time order.

    They come from two listeners (the deployment document, the log chunks), and a build line reaches
    Firestore a little after it was written, so both go through one Reorder, by their own timestamps."""
    started = clock.now()

    def show(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "status" in item:
                elapsed = (item["updatedAt"] - started).total_seconds()
                print(f"  {max(0.0, elapsed):6.1f}s  {item['status']}", flush=True)
            elif item.get("source") == "build":
                print(f"           │ {item.get('text', '')}", flush=True)

    reorder = Reorder(show)

    def show_status(deployment: dict[str, Any]) -> None:
        at = deployment.get("updatedAt") or clock.now()
        reorder.add([{"at": rfc3339(at), "status": deployment.get("status"), "updatedAt": at}])

    floor = floor_before(id_floor(started))
    try:
        with LogFollower(client(), app["tenantId"], app["id"], reorder.add, after=floor, deployment_id=deployment_id):
            yield show_status
    finally:
        reorder.close()


def _write_cli_config(stack: Stack) -> Path:
    """What `devgem` (shared/devgem/cli.py) needs to talk to this platform: .devgem/cli.json."""
    key, _ = dev_tokens.ensure_keys(stack.state_dir / "auth")
    token = dev_tokens.mint(key, PROJECT, TENANT, USER, lifetime_seconds=30 * 86400)
    path = stack.state_dir / "cli.json"
    config = {
        "apiUrl": stack.api_url,
        "token": token,
        "project": PROJECT,
        "firestoreEmulatorHost": stack.env["FIRESTORE_EMULATOR_HOST"],
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)
    return path


def _find_or_create_app(api: Api, repo_url: str) -> dict[str, Any]:
    """Local Firestore state survives restarts, so the second `make run` reuses the app."""
    listed = api.call("GET", "/v1/apps")
    listed.raise_for_status()
    for app in listed.json()["apps"]:
        if app["repoUrl"] == repo_url:
            return dict(app)
    return api.create_app(repo_url)


if __name__ == "__main__":
    sys.exit(main())
