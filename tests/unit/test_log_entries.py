"""A LogEntry becomes one safe line, or a counted rejection; nothing it holds can crash the parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devgem.logs.entries import BUILD, MAX_ENTRY_BYTES, RUN, RejectedLogEntry, parse, safe_text


def _entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "insertId": "abc-00000001",
        "logName": "projects/p/logs/run.googleapis.com%2Fstderr",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {"service_name": "shop-x1", "revision_name": "shop-x1-0123456789ab", "project_id": "p"},
        },
        "timestamp": "2026-11-26T10:00:00.123456789Z",
        "receiveTimestamp": "2026-11-26T10:00:01Z",
        "severity": "ERROR",
        "textPayload": "boom",
    }
    base.update(fields)
    return base


def _bytes(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry).encode()


def test_a_runtime_line() -> None:
    line = parse(_bytes(_entry()))
    assert line.source == RUN
    assert (line.service, line.revision) == ("shop-x1", "shop-x1-0123456789ab")
    assert line.insert_id == "abc-00000001"
    assert line.severity == "ERROR"
    assert line.text == "boom"
    assert line.stream == "stderr"
    assert line.at == datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)


def test_a_build_line_with_its_step() -> None:
    entry = _entry(
        resource={"type": "build", "labels": {"build_id": "b-1", "project_id": "p"}},
        logName="projects/p/logs/cloudbuild",
        labels={"build_step": "Step #0 - pack"},
        severity="INFO",
        textPayload="Installing dependencies",
    )
    line = parse(_bytes(entry))
    assert (line.source, line.build_id, line.step, line.stream) == (BUILD, "b-1", "Step #0 - pack", "cloudbuild")


def test_a_structured_line_shows_its_message_and_keeps_the_rest() -> None:
    entry = _entry(textPayload=None, jsonPayload={"message": "user signed in", "user": "ana"})
    del entry["textPayload"]
    assert parse(_bytes(entry)).text == 'user signed in {"user":"ana"}'
    entry["jsonPayload"] = {"event": "tick", "n": 3}
    assert parse(_bytes(entry)).text == '{"event":"tick","n":3}'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not-json"),
        (b"\xff\xfe\x00garbage", "not-json"),
        (b"[1, 2, 3]", "not-json"),
        (b"{}", "no-resource"),
        (_bytes(_entry(resource="cloud_run_revision")), "no-resource"),
        (_bytes(_entry(resource={"type": "cloud_run_revision", "labels": {}})), "no-resource"),
        (_bytes(_entry(resource={"type": "build", "labels": {"build_id": 7}})), "no-resource"),
        (_bytes(_entry(resource={"type": "gce_instance", "labels": {"instance_id": "1"}})), "unsupported-resource"),
        (_bytes(_entry(textPayload="x" * (MAX_ENTRY_BYTES + 1))), "too-large"),
    ],
)
def test_bad_entries_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(RejectedLogEntry) as caught:
        parse(raw)
    assert caught.value.reason == reason


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters() -> None:
    raw = _bytes(_entry(textPayload="PLACEHOLDER")).replace(b"PLACEHOLDER", b"caf\xc3\xa9 \xff\xfe ok")
    assert parse(raw).text == "café \ufffd\ufffd ok"
    surrogate = _bytes(_entry()).replace(b'"boom"', b'"half \\ud83d pair"')
    text = parse(surrogate).text
    assert text == "half \ufffd pair"
    text.encode("utf-8")  # what Firestore needs


def test_ansi_escapes_and_control_characters_are_removed() -> None:
    raw = "\x1b[31mred\x1b[0m \x1b]0;new title\x07plain \x1b[2K\x07bell\x00nul\x9b31mc1"
    assert safe_text(raw) == "red plain bellnulc1"
    assert safe_text("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_a_progress_bar_keeps_what_the_terminal_would_show_last() -> None:
    assert safe_text("Downloading  10%\rDownloading  60%\rDownloading 100%") == "Downloading 100%"
    assert safe_text("line one\r\nline two") == "line one\nline two"


def test_timestamps_severities_and_missing_insert_ids() -> None:
    no_time = _entry(timestamp="yesterday", severity="warn")
    line = parse(_bytes(no_time))
    assert line.at == datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC)  # receiveTimestamp
    assert line.severity == "WARNING"
    assert parse(_bytes(_entry(severity="LOUD"))).severity == "DEFAULT"
    anonymous = _entry()
    del anonymous["insertId"]
    first, again = parse(_bytes(anonymous)), parse(_bytes(anonymous))
    assert first.insert_id.startswith("h-") and first.insert_id == again.insert_id
