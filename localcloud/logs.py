"""The Log Router: process output turned into LogEntry JSON and published to ``log-entry``.

Production gets build and runtime logs through a Log Router sink whose destination is the
``log-entry`` topic; each message is one LogEntry in its JSON form. This module produces the same
entries from the lines a build or a revision writes, so the log_entry worker cannot tell the two
apart. Lines are split here (not with StreamReader.readline, which fails on very long lines) and
decoded with errors="replace", so no byte sequence can stop a log stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from devgem.domain.crash_signals import is_crash_signal
from localcloud.pubsub import Publisher

LOG_TOPIC = "log-entry"
CRASH_TOPIC = "crash-detected"
MAX_LINE = 256 * 1024  # Cloud Logging's entry size limit; longer lines are split
MAX_ENTRY = 256 * 1024  # one LogEntry, as JSON; a text entry above it is split again (see LogSink)

_SEVERITIES = {"DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
_SEVERITY_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "TRACE": "DEBUG", "CRIT": "CRITICAL"}
_SPECIAL = "logging.googleapis.com/"


def rfc3339(ns: int) -> str:
    """A nanosecond Unix time as RFC 3339 with nanoseconds and Z, as Cloud Logging writes it."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def log_name(project: str, log_id: str) -> str:
    """projects/P/logs/ID with the ID URL-encoded (run.googleapis.com%2Fstdout)."""
    return f"projects/{project}/logs/{quote(log_id, safe='')}"


def normalize_severity(value: Any, default: str) -> str:
    if not isinstance(value, str):
        return default
    s = value.strip().upper()
    s = _SEVERITY_ALIASES.get(s, s)
    return s if s in _SEVERITIES else default


def build_resource(project: str, build_id: str) -> dict[str, Any]:
    return {"type": "build", "labels": {"build_id": build_id, "build_trigger_id": "", "project_id": project}}


def revision_resource(project: str, region: str, service: str, revision: str) -> dict[str, Any]:
    return {
        "type": "cloud_run_revision",
        "labels": {
            "service_name": service,
            "revision_name": revision,
            "configuration_name": service,
            "location": region,
            "project_id": project,
        },
    }


def make_entry(
    *,
    log_name: str,
    resource: dict[str, Any],
    insert_id: str,
    line: str,
    severity: str,
    labels: dict[str, str] | None = None,
    parse_json: bool = False,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """One LogEntry. With parse_json, a JSON object line becomes jsonPayload and its special fields
    (severity, logging.googleapis.com/labels, trace, spanId, sourceLocation, httpRequest) are lifted
    into the entry, as Cloud Run's structured logging does."""
    ts = now_ns if now_ns is not None else time.time_ns()
    entry: dict[str, Any] = {
        "insertId": insert_id,
        "logName": log_name,
        "resource": resource,
        "timestamp": rfc3339(ts),
        "receiveTimestamp": rfc3339(ts),
        "severity": severity,
        "labels": dict(labels or {}),
    }
    payload = _json_object(line) if parse_json else None
    if payload is None:
        entry["textPayload"] = line
        return entry
    if "severity" in payload:
        entry["severity"] = normalize_severity(payload.pop("severity"), severity)
    extra_labels = payload.pop(_SPECIAL + "labels", None)
    if isinstance(extra_labels, dict):
        entry["labels"].update({str(k): str(v) for k, v in extra_labels.items()})
    for key, field in (("trace", "trace"), ("spanId", "spanId"), ("sourceLocation", "sourceLocation")):
        if _SPECIAL + key in payload:
            entry[field] = payload.pop(_SPECIAL + key)
    if isinstance(payload.get("httpRequest"), dict):
        entry["httpRequest"] = payload.pop("httpRequest")
    entry["jsonPayload"] = payload
    return entry


def _json_object(line: str) -> dict[str, Any] | None:
    s = line.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return None
    try:
        value = json.loads(s)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class LogSink:
    """Publishes LogEntry dicts to the log-entry topic, as the Log Router sink does, and those the
    crash filter selects to crash-detected too, as production's second sink does: the predicate is
    the same rule as that sink's filter text (devgem.domain.crash_signals), so both agree.

    A text entry whose JSON exceeds 256 KiB (a line near the limit plus its envelope, or one whose
    control characters JSON escapes six-fold) is split into halves with insertIds `<id>.0`, `<id>.1`,
    which sort in order: log_entry would reject it whole, and the line would be lost."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def emit(self, entry: dict[str, Any]) -> None:
        data = json.dumps(entry, ensure_ascii=False).encode()
        text = entry.get("textPayload")
        if len(data) > MAX_ENTRY and isinstance(text, str) and len(text) > 1:
            half = len(text) // 2
            for i, part in enumerate((text[:half], text[half:])):
                self.emit({**entry, "textPayload": part, "insertId": f"{entry['insertId']}.{i}"})
            return
        attributes = {"logging.googleapis.com/timestamp": entry["timestamp"]}
        self._publisher.publish(LOG_TOPIC, data, attributes)
        if is_crash_signal(entry):
            self._publisher.publish(CRASH_TOPIC, data, attributes)


class LineSplitter:
    """Bytes in, complete text lines out: CR/LF stripped, invalid UTF-8 replaced, long lines split."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buf.extend(data)
        lines: list[str] = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                break
            lines.extend(self._cut(bytes(self._buf[:i])))
            del self._buf[: i + 1]
        while len(self._buf) >= MAX_LINE:
            lines.append(self._decode(bytes(self._buf[:MAX_LINE])))
            del self._buf[:MAX_LINE]
        return lines

    def flush(self) -> list[str]:
        rest = bytes(self._buf)
        self._buf.clear()
        return self._cut(rest) if rest else []

    def _cut(self, raw: bytes) -> list[str]:
        raw = raw.rstrip(b"\r")
        if len(raw) <= MAX_LINE:
            return [self._decode(raw)]
        return [self._decode(raw[i : i + MAX_LINE]) for i in range(0, len(raw), MAX_LINE)]

    @staticmethod
    def _decode(raw: bytes) -> str:
        return raw.decode("utf-8", errors="replace")


async def pump_lines(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    """Read stream to EOF, calling on_line for each line. Reading never waits on on_line's consumers."""
    splitter = LineSplitter()
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        for line in splitter.feed(chunk):
            on_line(line)
    for line in splitter.flush():
        on_line(line)
