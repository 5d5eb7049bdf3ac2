"""Log lines as a terminal shows them: local time, severity (coloured where wanted), source, text."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any, TextIO

from devgem.logs.entries import safe_text

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
