"""`devgem`: the command line. `devgem logs APP [--follow]` shows an app's build and runtime logs.

History comes from the api (GET /v1/apps/{app}/logs), then `--follow` keeps printing new lines as a
Firestore listener reports them (no polling), starting where the history ended.

Where it connects, first found wins:
  DEVGEM_API_URL, DEVGEM_TOKEN, DEVGEM_PROJECT, DEVGEM_FIRESTORE_EMULATOR_HOST  (environment)
  $DEVGEM_CONFIG, else .devgem/cli.json in this directory or a parent, else ~/.config/devgem/cli.json
`make run` writes .devgem/cli.json for the local platform (its api, a local sign-in, the emulator).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import requests
from google.auth.credentials import Credentials

from devgem.logs.entries import safe_text

CONFIG_NAME = "cli.json"
_APP_ID = re.compile(r"^[a-z0-9]{6,40}$")

SEVERITY_COLOURS = {
    "DEBUG": "2",  # dim
    "INFO": "36",  # cyan
    "NOTICE": "34",  # blue
    "WARNING": "33",  # yellow
    "ERROR": "31",  # red
    "CRITICAL": "1;31",
    "ALERT": "1;35",
    "EMERGENCY": "1;41;97",
}


class CliError(Exception):
    """Something the user can fix; printed without a traceback."""


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str
    project: str
    firestore_emulator_host: str
    source: str

    @classmethod
    def load(cls) -> Config:
        path = _config_path()
        data: dict[str, Any] = {}
        if path is not None:
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read {path}: {exc}") from exc
        config = cls(
            api_url=os.environ.get("DEVGEM_API_URL") or str(data.get("apiUrl", "")),
            token=os.environ.get("DEVGEM_TOKEN") or str(data.get("token", "")),
            project=os.environ.get("DEVGEM_PROJECT") or str(data.get("project", "")),
            firestore_emulator_host=os.environ.get("DEVGEM_FIRESTORE_EMULATOR_HOST")
            or str(data.get("firestoreEmulatorHost", "")),
            source=str(path) if path else "the environment",
        )
        if not config.api_url or not config.token:
            raise CliError(
                "not signed in: start the local platform with `make run` (it writes .devgem/cli.json), "
                "or set DEVGEM_API_URL and DEVGEM_TOKEN"
            )
        return config


def _config_path() -> Path | None:
    if os.environ.get("DEVGEM_CONFIG"):
        return Path(os.environ["DEVGEM_CONFIG"])
    for directory in [Path.cwd(), *Path.cwd().parents]:
        candidate = directory / ".devgem" / CONFIG_NAME
        if candidate.is_file():
            return candidate
    home = Path.home() / ".config" / "devgem" / CONFIG_NAME
    return home if home.is_file() else None


class Api:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.token}"

    def get(self, path: str, **params: Any) -> Any:
        url = self.config.api_url.rstrip("/") + path
        try:
            response = self.session.get(url, params={k: v for k, v in params.items() if v}, timeout=60)
        except requests.RequestException as exc:
            raise CliError(
                f"cannot reach the Devgem api at {self.config.api_url} ({type(exc).__name__}); is it running?"
            ) from None
        if response.status_code == 401:
            raise CliError("the api refused the sign-in (expired?): run `make run` again, or set a fresh DEVGEM_TOKEN")
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise CliError(message)
        return response.json()

    def find_app(self, name_or_id: str) -> dict[str, Any]:
        apps = self.get("/v1/apps")["apps"]
        for app in apps:
            if name_or_id in (app["id"], app.get("name"), app.get("serviceName")):
                return dict(app)
        if _APP_ID.match(name_or_id):
            return dict(self.get(f"/v1/apps/{name_or_id}"))
        names = ", ".join(sorted(a.get("name", a["id"]) for a in apps)) or "none yet"
        raise CliError(f"no app named {name_or_id!r} (your apps: {names})")


# --- output ------------------------------------------------------------------------------------


class Printer:
    def __init__(self, out: TextIO, colour: bool, show_deployment: bool) -> None:
        self.out = out
        self.colour = colour
        self.show_deployment = show_deployment
        self._lock = threading.Lock()

    def lines(self, lines: list[dict[str, Any]]) -> None:
        text = "".join(self.format(line) + "\n" for line in lines)
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def format(self, line: dict[str, Any]) -> str:
        at = _local_time(str(line.get("at", "")))
        severity = str(line.get("severity") or "DEFAULT")
        source = "build" if line.get("source") == "build" else "app"
        if self.show_deployment and line.get("deploymentId"):
            source += f" {str(line['deploymentId'])[:6]}"
        label = f"{severity:<8}" if severity != "DEFAULT" else " " * 8
        source = source.ljust(12 if self.show_deployment else 5)
        plain_head = f"{at} {label} {source}"
        head = plain_head
        if self.colour:
            coloured = f"\x1b[{SEVERITY_COLOURS[severity]}m{label}\x1b[0m" if severity in SEVERITY_COLOURS else label
            head = f"\x1b[2m{at}\x1b[0m {coloured} \x1b[2m{source}\x1b[0m"
        # Lines were made safe when written; a terminal is still never trusted with stored data.
        text = safe_text(str(line.get("text", "")))
        return f"{head} {text.replace(chr(10), chr(10) + ' ' * (len(plain_head) + 1))}"


def _local_time(at: str) -> str:
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return at[:23].ljust(23)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]


def _use_colour(choice: str, out: TextIO) -> bool:
    if choice != "auto":
        return choice == "always"
    return out.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


# --- commands ----------------------------------------------------------------------------------


def cmd_logs(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    api = Api(Config.load())
    app = api.find_app(args.app)
    printer = Printer(out, _use_colour(args.color, out), show_deployment=not args.deployment)
    history = api.get(
        f"/v1/apps/{app['id']}/logs",
        since=args.since,
        deployment=args.deployment,
        severity=args.severity,
        source=args.source,
        limit=str(args.lines),
    )
    printer.lines(history["lines"])
    if not args.follow:
        if history.get("truncated") and sys.stderr.isatty():
            print(f"(the newest {len(history['lines'])} lines; use --lines or --since for more)", file=sys.stderr)
        return 0
    return _follow(api.config, app, history, printer, args)


def _follow(config: Config, app: dict[str, Any], history: dict[str, Any], printer: Printer, args: Any) -> int:
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
        _firestore(config),
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


def _firestore(config: Config) -> Any:
    """A Firestore client: the emulator locally; in production, the user's ID token (security rules apply)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    project = config.project or "devgem-local"
    if config.firestore_emulator_host:
        os.environ["FIRESTORE_EMULATOR_HOST"] = config.firestore_emulator_host
        return firestore.Client(project=project, credentials=AnonymousCredentials())

    return firestore.Client(project=project, credentials=_IdToken(config.token))


class _IdToken(Credentials):
    """The signed-in user's Identity Platform ID token as a bearer token: Firestore applies the
    security rules to it, so the CLI reads exactly what the web app may read."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def refresh(self, request: Any) -> None:
        raise CliError("the sign-in expired: sign in again")


def cmd_apps(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    api = Api(Config.load())
    apps = api.get("/v1/apps")["apps"]
    if not apps:
        out.write("No apps yet.\n")
        return 0
    width = max(len(a.get("name", "")) for a in apps)
    for app in apps:
        live = app.get("liveRevision") or "not live"
        out.write(f"{app.get('name', ''):<{width}}  {app['id']}  {app.get('url', '')}  {live}\n")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="devgem", description="Devgem from the command line.")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    logs = sub.add_parser(
        "logs",
        help="show an app's build and runtime logs",
        description="Show an app's build and runtime logs, newest last; --follow keeps streaming them.",
    )
    logs.add_argument("app", metavar="APP", help="the app's name or id (see `devgem apps`)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines as they arrive")
    logs.add_argument("-d", "--deployment", metavar="ID", help="only the lines of one deployment (build and run)")
    logs.add_argument("-s", "--since", metavar="WHEN", help="only lines since a duration ago (10m, 2h, 1d) or a time")
    logs.add_argument(
        "--severity", metavar="LEVEL", type=str.upper, help="only lines at this severity or above (e.g. WARNING, ERROR)"
    )
    logs.add_argument("--source", choices=["build", "run"], help="only build lines, or only the running app's")
    logs.add_argument("-n", "--lines", type=int, default=200, metavar="N", help="how many past lines (default 200)")
    logs.add_argument("--color", choices=["auto", "always", "never"], default="auto", help="colour severities")
    logs.set_defaults(run=cmd_logs)
    apps = sub.add_parser("apps", help="list your apps")
    apps.set_defaults(run=cmd_apps)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as exc:
        print(f"devgem: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `devgem logs app | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
