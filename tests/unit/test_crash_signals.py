"""The crash filter (one rule, two forms) and fingerprints of real crashes from Python, Node and Go."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devgem.domain import crash_signals
from devgem.domain.crash_signals import fingerprint, is_crash_signal

ROOT = Path(__file__).resolve().parents[2]

PYTHON = """Traceback (most recent call last):
  File "/workspace/app.py", line 6, in <module>
    main()
  File "/workspace/app.py", line 5, in main
    handler({})
  File "/workspace/shop/orders.py", line 3, in handler
    return order["id"]
           ~~~~~^^^^^^
KeyError: 'id'"""

PYTHON_CHAINED = """Traceback (most recent call last):
  File "/workspace/db.py", line 12, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/workspace/.venv/lib/python3.12/site-packages/flask/app.py", line 1511, in wsgi_app
    response = self.full_dispatch_request()
  File "/workspace/app.py", line 20, in index
    return db.connect()
  File "/workspace/db.py", line 14, in connect
    raise db.errors.DatabaseUnavailable("down") from exc
db.errors.DatabaseUnavailable: down"""

NODE = """/workspace/s.js:1
function handler(req) { return req.body.id; }
                                        ^

TypeError: Cannot read properties of undefined (reading 'id')
    at handler (/workspace/s.js:1:41)
    at serve (/workspace/s.js:2:20)
    at Object.<anonymous> (/workspace/s.js:3:1)
    at Module._compile (node:internal/modules/cjs/loader:1521:14)
    at node:internal/main/run_main_module:28:49

Node.js v20.20.2"""

GO = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6a1b2c]

goroutine 18 [running]:
main.(*Server).handleOrder(0x0, {0x7f2a40, 0xc000134000}, 0xc000122000)
	/workspace/main.go:14 +0x1c
net/http.HandlerFunc.ServeHTTP(0x0?, {0x7f2a40?, 0xc000134000?}, 0x0?)
	/usr/local/go/src/net/http/server.go:2136 +0x29
created by net/http.(*Server).Serve in goroutine 1
	/usr/local/go/src/net/http/server.go:3285 +0x4b4"""

GO_CUSTOM = """panic: config missing

goroutine 1 [running]:
main.mustConfig(...)
	/workspace/config.go:9
main.main()
	/workspace/main.go:20 +0x1d"""


def entry(text: str | None = None, **overrides: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "insertId": "abc",
        "logName": "projects/p/logs/run.googleapis.com%2Fstderr",
        "resource": {"type": "cloud_run_revision", "labels": {"service_name": "shop", "revision_name": "shop-x"}},
        "severity": "ERROR",
        "labels": {"devgem-managed": "true", "instanceId": "i"},
    }
    if text is not None:
        e["textPayload"] = text
    e.update(overrides)
    return e


SYSTEM = "projects/p/logs/run.googleapis.com%2Fvarlog%2Fsystem"
REQUESTS = "projects/p/logs/run.googleapis.com%2Frequests"

CASES = [
    ("exit 3", entry("Container called exit(3).", logName=SYSTEM), True, "exit:3"),
    ("exit 0 is not a crash", entry("Container called exit(0).", logName=SYSTEM, severity="WARNING"), False, None),
    ("signal", entry("Container terminated on signal 9.", logName=SYSTEM), True, "signal:9"),
    (
        "oom",
        entry(
            "Memory limit of 512 MiB exceeded with 530 MiB used. Consider increasing the memory limit.", logName=SYSTEM
        ),
        True,
        "oom",
    ),
    ("python", entry(PYTHON), True, "python:KeyError@orders.py:handler"),
    ("python chained", entry(PYTHON_CHAINED), True, "python:db.errors.DatabaseUnavailable@db.py:connect"),
    ("python header only", entry("Traceback (most recent call last):"), True, "python:Traceback"),
    ("node", entry(NODE), True, "node:TypeError@s.js:handler"),
    (
        "go",
        entry(GO),
        True,
        "go:runtime error: invalid memory address or nil pointer dereference@main.(*Server).handleOrder",
    ),
    ("go custom panic", entry(GO_CUSTOM), True, "go:panic@main.mustConfig"),
    (
        "structured python",
        entry(None, jsonPayload={"message": PYTHON, "severity": "ERROR"}),
        True,
        "python:KeyError@orders.py:handler",
    ),
    ("a traceback at INFO is not a crash", entry(PYTHON, severity="INFO"), False, None),
    ("an error without a stack", entry("ERROR: payment declined"), False, None),
    ("5xx", entry(None, logName=REQUESTS, httpRequest={"status": 502}), True, "http:502"),
    ("4xx", entry(None, logName=REQUESTS, httpRequest={"status": 404}, severity="WARNING"), False, None),
    ("not managed", entry("Container called exit(3).", logName=SYSTEM, labels={"instanceId": "i"}), False, None),
    ("a build", entry(PYTHON, resource={"type": "build", "labels": {"build_id": "b"}}), False, None),
]


@pytest.mark.parametrize(("name", "e", "crash", "fp"), CASES, ids=[c[0] for c in CASES])
def test_the_predicate_and_the_fingerprint(name: str, e: dict[str, Any], crash: bool, fp: str | None) -> None:
    assert is_crash_signal(e) is crash
    if fp is not None:
        assert fingerprint(e) == fp


@pytest.mark.parametrize(
    "line",
    ["    at handler (/workspace/s.js:1:41)", "goroutine 18 [running]:", "    at Module._compile (node:internal)"],
)
def test_one_line_of_an_unstructured_stack_is_selected_but_is_no_crash_of_its_own(line: str) -> None:
    assert is_crash_signal(entry(line))
    assert crash_signals.is_stack_fragment(entry(line))


@pytest.mark.parametrize("text", [PYTHON, NODE, GO, "Traceback (most recent call last):"])
def test_a_whole_trace_or_its_header_is_not_a_fragment(text: str) -> None:
    assert not crash_signals.is_stack_fragment(entry(text))


def test_a_fingerprint_ignores_what_varies_between_occurrences() -> None:
    again = PYTHON.replace("line 3", "line 30").replace("'id'", "'order_id'")
    assert fingerprint(entry(again)) == fingerprint(entry(PYTHON))
    other_go = GO.replace("0xc000134000", "0xc000999000").replace("goroutine 18", "goroutine 77")
    assert fingerprint(entry(other_go)) == fingerprint(entry(GO))


def test_terraform_reads_the_same_filter_text() -> None:
    """terraform/envs/prod/platform.tf's crash sink reads this file. Regenerate it with
    `python -m devgem.domain.crash_signals > terraform/envs/prod/crash_filter.txt`."""
    assert (ROOT / "terraform/envs/prod/crash_filter.txt").read_text().strip() == crash_signals.SINK_FILTER
    assert 'file("${path.module}/crash_filter.txt")' in (ROOT / "terraform/envs/prod/platform.tf").read_text()


def test_the_filter_text_names_every_marker_the_predicate_uses() -> None:
    for marker in (*crash_signals.EXIT_MARKERS, *crash_signals.STACK_MARKERS, crash_signals.OOM_MARKER):
        assert f'"{marker}"' in crash_signals.SINK_FILTER
    assert 'labels."devgem-managed"="true"' in crash_signals.SINK_FILTER
    assert "httpRequest.status>=500" in crash_signals.SINK_FILTER
