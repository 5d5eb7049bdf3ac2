"""What counts as a crash signal in a LogEntry, and which crash it is: the rule kept in one place.

Production selects crash signals with a Log Router sink whose filter is `SINK_FILTER`; locally,
localcloud's Log Router applies `is_crash_signal` to every entry it publishes. Both come from the
same markers below, and terraform reads the filter from `terraform/envs/prod/crash_filter.txt`,
which a test keeps equal to `SINK_FILTER` (terraform cannot import Python). So the two stacks cannot
drift apart: changing what a crash is means editing this module and regenerating that file.

What a crash is, on a Devgem-managed revision (template label `devgem-managed=true`, which Cloud Run
copies into every entry's labels; the platform's own functions do not carry it):
- the platform's system line `Container called exit(N).` with N != 0, or `Container terminated on
  signal N.`;
- an out-of-memory kill (`Memory limit of ... exceeded`);
- an entry of severity ERROR or above carrying a stack trace (Python, Node, Go markers);
- a request log with an HTTP status of 500 or above (only when request logging is on).

Cloud Logging's `:` operator is a case-insensitive substring test, and the predicate does the same.

The fingerprint names *which* crash a signal is, so that one crash loop is one incident and two
different bugs are two: the exit code, the exception type and top frame, the HTTP status, or
`unreachable` (the health sweeper's, issue #9). It must be stable across restarts of the same bug:
so no line numbers, addresses, ids or messages, which vary from one occurrence to the next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MANAGED_LABEL = "devgem-managed"
SYSTEM_LOG = "run.googleapis.com%2Fvarlog%2Fsystem"
REQUEST_LOG = "run.googleapis.com%2Frequests"
EXIT_MARKERS = ("Container called exit(", "Container terminated on signal")
CLEAN_EXIT = "Container called exit(0)."
OOM_MARKER = "Memory limit of"
# Markers of a stack trace in one entry's text: Python, Node (an indented "at" frame), Go.
STACK_MARKERS = ("Traceback (most recent call last)", "    at ", "goroutine ")
ERROR_SEVERITIES = ("ERROR", "CRITICAL", "ALERT", "EMERGENCY")
PAYLOAD_FIELDS = ("textPayload", "jsonPayload.message", "jsonPayload.stack_trace")


def _any_of(field: str, markers: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f'{field}:"{m}"' for m in markers) + ")"


def _payload_has(markers: tuple[str, ...]) -> str:
    return "(" + " OR ".join(_any_of(f, markers) for f in PAYLOAD_FIELDS) + ")"


def _sink_filter() -> str:
    system = (
        f'(logName:"{SYSTEM_LOG}" AND (({_any_of("textPayload", EXIT_MARKERS)} AND '
        f'NOT textPayload:"{CLEAN_EXIT}") OR textPayload:"{OOM_MARKER}"))'
    )
    stack = f"(severity>=ERROR AND {_payload_has(STACK_MARKERS)})"
    requests = f'(logName:"{REQUEST_LOG}" AND httpRequest.status>=500)'
    managed = f'resource.type="cloud_run_revision" AND labels."{MANAGED_LABEL}"="true"'
    return f"{managed} AND ({system} OR {stack} OR {requests})"


SINK_FILTER = _sink_filter()


def _has(text: str, marker: str) -> bool:
    return marker.lower() in text.lower()


def _payload_texts(entry: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    text = entry.get("textPayload")
    if isinstance(text, str):
        texts.append(text)
    payload = entry.get("jsonPayload")
    if isinstance(payload, Mapping):
        texts.extend(v for k in ("message", "stack_trace") if isinstance(v := payload.get(k), str))
    return texts


def _status(entry: Mapping[str, Any]) -> int:
    request = entry.get("httpRequest")
    status = request.get("status") if isinstance(request, Mapping) else None
    try:
        return int(status) if status is not None else 0
    except (TypeError, ValueError):
        return 0


def is_crash_signal(entry: Mapping[str, Any]) -> bool:
    """The sink's filter as a predicate on a LogEntry's JSON form (tests/unit/test_crash_signals.py
    runs the same cases against both)."""
    resource = entry.get("resource")
    if not isinstance(resource, Mapping) or resource.get("type") != "cloud_run_revision":
        return False
    labels = entry.get("labels")
    if not isinstance(labels, Mapping) or labels.get(MANAGED_LABEL) != "true":
        return False
    log_name = str(entry.get("logName", ""))
    text = entry.get("textPayload") if isinstance(entry.get("textPayload"), str) else ""
    assert isinstance(text, str)
    if _has(log_name, SYSTEM_LOG):
        if any(_has(text, m) for m in EXIT_MARKERS) and not _has(text, CLEAN_EXIT):
            return True
        if _has(text, OOM_MARKER):
            return True
    severe = str(entry.get("severity", "")).upper() in ERROR_SEVERITIES
    if severe and any(_has(t, m) for t in _payload_texts(entry) for m in STACK_MARKERS):
        return True
    return _has(log_name, REQUEST_LOG) and _status(entry) >= 500


# -- fingerprints ------------------------------------------------------------------------------

UNREACHABLE = "unreachable"
UNKNOWN_STACK = "error:stack"  # a stack trace none of the parsers below recognise
_EXIT = re.compile(r"Container called exit\((-?\d+)\)")
_SIGNAL = re.compile(r"Container terminated on signal (\d+)")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)', re.M)
_PY_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|[A-Z]\w*))(?::|$)", re.M)
_NODE_ERROR = re.compile(r"^\s*(?:Uncaught )?([A-Za-z_$][\w$.]*(?:Error|Exception))\b", re.M)
_NODE_FRAME = re.compile(r"^\s+at (?:(?:async )?([^\s(]+) \()?([^\s()]+?)(?::\d+:\d+)?\)?$", re.M)
_GO_PANIC = re.compile(r"^panic: (.*)$", re.M)
_GO_FRAME = re.compile(r"^([\w./-]+\.[\w.()*]+)\(.*\)\n\t(\S+?):\d+", re.M)
_GO_RUNTIME = re.compile(r"^runtime error: ([a-z ]+?)(?:[:\[]|$)")


def _basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def python_fingerprint(text: str) -> str | None:
    """`python:<ExceptionType>@<file>:<function>` of the innermost frame (where it was raised)."""
    if "Traceback (most recent call last)" not in text:
        return None
    frames = _PY_FRAME.findall(text)
    after = text.rsplit("Traceback (most recent call last)", 1)[1]
    lines = [line for line in after.splitlines() if line and not line.startswith((" ", "\t"))]
    kind = "Traceback"
    for line in reversed(lines):
        match = _PY_EXCEPTION.match(line)
        if match:
            kind = match.group(1)
            break
    top = f"@{_basename(frames[-1][0])}:{frames[-1][1]}" if frames else ""
    return f"python:{kind}{top}"


def node_fingerprint(text: str) -> str | None:
    """`node:<ErrorType>@<file>:<function>` of the first `at` frame (where it was thrown)."""
    frames = _NODE_FRAME.findall(text)
    error = _NODE_ERROR.search(text)
    if not frames or not error:
        return None
    function, location = frames[0]
    where = _basename(location)
    return f"node:{error.group(1)}@{where}:{function or '<anonymous>'}"


def go_fingerprint(text: str) -> str | None:
    """`go:<panic kind>@<function>`: the first frame below the runtime's own, in the panicking goroutine."""
    panic = _GO_PANIC.search(text)
    if not panic:
        return None
    message = panic.group(1)
    runtime = _GO_RUNTIME.match(message)
    kind = f"runtime error: {runtime.group(1)}" if runtime else "panic"
    frames = [f for f, _ in _GO_FRAME.findall(text) if not f.startswith(("runtime.", "panic("))]
    top = f"@{frames[0]}" if frames else ""
    return f"go:{kind}{top}"


def fingerprint(entry: Mapping[str, Any]) -> str:
    """Which crash a signal (an entry `is_crash_signal` accepted) is; see the module's docstring."""
    texts = _payload_texts(entry)
    text = "\n".join(texts)
    if match := _EXIT.search(text):
        return f"exit:{int(match.group(1))}"
    if match := _SIGNAL.search(text):
        return f"signal:{int(match.group(1))}"
    if _has(text, OOM_MARKER):
        return "oom"
    status = _status(entry)
    if status >= 500:
        return f"http:{status}"
    for parse in (python_fingerprint, go_fingerprint, node_fingerprint):
        for t in texts:
            found = parse(t)
            if found:
                return found
    return UNKNOWN_STACK


def is_stack_fragment(entry: Mapping[str, Any]) -> bool:
    """A single line of a stack trace that says nothing by itself (a Node `    at ...` frame, Go's
    `goroutine 18 [running]:`): the filter selects it, as Cloud Logging cannot tell a whole trace
    from one of its lines, but it is no crash of its own. Cloud Run writes each line of unstructured
    output as its own entry, so without this one Node crash would count once per frame."""
    texts = _payload_texts(entry)
    return fingerprint(entry) == UNKNOWN_STACK and not any("\n" in t.strip() for t in texts)


if __name__ == "__main__":  # regenerates terraform/envs/prod/crash_filter.txt
    print(SINK_FILTER)
