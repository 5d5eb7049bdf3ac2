"""What one LogEntry says: the Log Router's JSON turned into one safe log line, or a reason to reject it.

A Log Router sink publishes one LogEntry per Pub/Sub message (up to 256 KiB). Only two kinds are
Devgem's: resource.type `build` (labels build_id, project_id) and `cloud_run_revision` (labels
service_name, revision_name, ...). The text is made safe to store and to print in a terminal: invalid
UTF-8 and lone surrogates become U+FFFD, ANSI escape sequences and other control characters are
removed, and a progress bar's carriage returns keep only what a terminal would finally show.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from devgem import clock
from devgem.domain.errors import InvalidEvent

MAX_ENTRY_BYTES = 256 * 1024  # the Log Router's limit for one LogEntry
MAX_TEXT_CHARS = MAX_ENTRY_BYTES  # a decoded payload is never longer; the cut is only a guard

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
SEVERITY_RANK = {name: i for i, name in enumerate(SEVERITIES)}
_SEVERITY_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "TRACE": "DEBUG", "CRIT": "CRITICAL"}

BUILD = "build"
RUN = "run"

# ESC [ ... final (CSI), ESC ] ... BEL or ESC \ (OSC), ESC P/X/^/_ ... ESC \ (DCS and friends),
# and two-character escapes; then any C0/C1 control except tab.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and newline stay
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_FRACTION = re.compile(r"\.(\d+)")


class RejectedLogEntry(InvalidEvent):
    """A LogEntry Devgem will never store; `reason` is a short code that rejections are counted by."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class LogLine:
    insert_id: str
    at: datetime
    severity: str
    text: str
    source: str  # BUILD or RUN
    stream: str  # the last part of logName: stdout, stderr, varlog/system, cloudbuild, ...
    build_id: str | None = None
    service: str | None = None
    revision: str | None = None
    step: str | None = None

    def size(self) -> int:
        """Roughly what the line costs in a chunk document, in bytes."""
        return len(self.text.encode("utf-8")) + len(self.insert_id) + len(self.stream) + len(self.step or "") + 96


def parse(data: bytes) -> LogLine:
    """One LogEntry (the data of one Pub/Sub message) as a line, or RejectedLogEntry."""
    if len(data) > MAX_ENTRY_BYTES:
        raise RejectedLogEntry("too-large", f"{len(data)} bytes; a LogEntry is at most {MAX_ENTRY_BYTES}")
    try:
        entry = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise RejectedLogEntry("not-json", str(exc)[:200]) from exc
    if not isinstance(entry, dict):
        raise RejectedLogEntry("not-json", "the message is JSON but not an object")
    resource = entry.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
        raise RejectedLogEntry("no-resource", "the LogEntry has no resource.type")
    labels = resource.get("labels")
    if not isinstance(labels, dict):
        labels = {}
    kind = resource["type"]
    if kind == "build":
        build_id = _label(labels, "build_id")
        if not build_id:
            raise RejectedLogEntry("no-resource", "a build LogEntry without resource.labels.build_id")
        line = LogLine(
            "", clock.now(), "", "", BUILD, "", build_id=build_id, step=_label(entry.get("labels"), "build_step")
        )
    elif kind == "cloud_run_revision":
        service = _label(labels, "service_name")
        if not service:
            raise RejectedLogEntry("no-resource", "a cloud_run_revision LogEntry without service_name")
        line = LogLine("", clock.now(), "", "", RUN, "", service=service, revision=_label(labels, "revision_name"))
    else:
        raise RejectedLogEntry("unsupported-resource", f"resource.type {kind[:60]!r} is not a build or a revision")
    return replace(
        line,
        insert_id=_insert_id(entry),
        at=_timestamp(entry.get("timestamp")) or _timestamp(entry.get("receiveTimestamp")) or line.at,
        severity=normalize_severity(entry.get("severity")),
        text=safe_text(_payload_text(entry)),
        stream=_stream(entry.get("logName")),
    )


def normalize_severity(value: object) -> str:
    if not isinstance(value, str):
        return "DEFAULT"
    s = value.strip().upper()
    s = _SEVERITY_ALIASES.get(s, s)
    return s if s in SEVERITY_RANK else "DEFAULT"


def safe_text(text: str) -> str:
    """Text that is valid UTF-8 for Firestore and harmless in a terminal."""
    text = _SURROGATE.sub("\ufffd", text)
    if "\r" in text:  # a progress bar: keep, per line, what a terminal would show last
        text = "\n".join(_last_overwrite(line) for line in text.split("\n"))
    text = _CONTROL.sub("", _ANSI.sub("", text))
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f" … [{len(text) - MAX_TEXT_CHARS} more characters cut]"
    return text


def _last_overwrite(line: str) -> str:
    parts = [p for p in line.split("\r") if p.strip()]
    return parts[-1] if parts else ""


def _payload_text(entry: dict[str, Any]) -> str:
    text = entry.get("textPayload")
    if isinstance(text, str):
        return text
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        for key in ("message", "msg"):
            if isinstance(payload.get(key), str):
                rest = {k: v for k, v in payload.items() if k != key}
                extra = f" {json.dumps(rest, separators=(',', ':'), ensure_ascii=False)}" if rest else ""
                return str(payload[key]) + extra
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    proto = entry.get("protoPayload")
    if isinstance(proto, dict):
        return json.dumps(proto, separators=(",", ":"), ensure_ascii=False)
    return ""


def _insert_id(entry: dict[str, Any]) -> str:
    value = entry.get("insertId")
    if isinstance(value, str) and value and len(value) <= 256:
        return safe_text(value)
    # The Log Router always sets one; without it, a stable digest still makes redeliveries collapse.
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "h-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _timestamp(value: object) -> datetime | None:
    """RFC 3339 with up to nanoseconds (Cloud Logging writes nine digits); microseconds are kept."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip(), count=1)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _stream(log_name: object) -> str:
    if not isinstance(log_name, str) or "/logs/" not in log_name:
        return ""
    name = log_name.rsplit("/logs/", 1)[1].replace("%2F", "/").replace("%2f", "/")
    return safe_text(name.removeprefix("run.googleapis.com/"))[:64]


def _label(labels: object, key: str) -> str | None:
    if not isinstance(labels, dict):
        return None
    value = labels.get(key)
    return value[:256] if isinstance(value, str) and value else None
