"""`devgem`: the command line. `devgem logs APP [--follow]` shows an app's build and runtime logs;
`devgem rollback APP [--to ID]` brings an earlier release back.

History comes from the api (GET /v1/apps/{app}/logs), then `--follow` keeps printing new lines as a
Firestore listener reports them (no polling), starting where the history ended.

Where it connects is in config.py; the modules beside this one hold the api client (api.py), the
Firestore credentials (credentials.py), the terminal rendering (render.py) and the follow loop
(follow.py). This one holds the commands and their arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from devgem_cli.api import Api
from devgem_cli.config import CONFIG_NAME, Config
from devgem_cli.errors import CliError
from devgem_cli.follow import follow
from devgem_cli.render import SEVERITY_COLOURS, Printer, _local_time, _use_colour

__all__ = ["CONFIG_NAME", "SEVERITY_COLOURS", "Api", "CliError", "Config", "Printer", "_local_time", "main", "parser"]


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
    return follow(api.config, app, history, printer, args)


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


def cmd_rollback(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    api = Api(Config.load())
    app = api.find_app(args.app)
    target = f"deployment {args.to}" if args.to else "the release before the live one"
    out.write(f"Rolling {app.get('name', app['id'])} back to {target}: moving traffic, then checking its URL...\n")
    out.flush()
    body = {"to": args.to} if args.to else {}
    d = api.post(f"/v1/apps/{app['id']}/rollback", body)
    out.write(f"Live: {d['url']} serves revision {d['revision']} again (rollback {d['id']} of {d['rollbackOf']})\n")
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
    rollback = sub.add_parser(
        "rollback",
        help="bring an earlier release back, without a rebuild",
        description="Move traffic back to an earlier release (its code and configuration as they were); "
        "the next deploy takes the traffic again.",
    )
    rollback.add_argument("app", metavar="APP", help="the app's name or id (see `devgem apps`)")
    rollback.add_argument("--to", metavar="ID", help="the deployment to go back to (default: the one before the live)")
    rollback.set_defaults(run=cmd_rollback)
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
