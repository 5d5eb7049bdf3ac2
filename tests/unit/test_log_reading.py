"""Reading chunks back: lines in order, each once, filtered; the CLI's rendering; the api's `since`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from devgem import clock
from devgem.domain.errors import InvalidInput
from devgem.logs.chunks import SeenIds, filter_lines, id_floor
from devgem.logs.follow import floor_before
from devgem.usecases.read_logs import parse_since
from devgem_cli.main import Printer, parser


def chunk(*lines: tuple[str, str, str, str]) -> dict[str, object]:
    return {
        "deploymentId": "0123456789ab",
        "lines": json.dumps(
            [
                {"at": at, "severity": sev, "text": text, "insertId": iid, "source": "run"}
                for iid, at, sev, text in lines
            ]
        ),
    }


def test_lines_are_read_once_filtered_by_severity_and_time() -> None:
    a = chunk(
        ("i1", "2026-11-26T10:00:00.000000Z", "INFO", "one"), ("i2", "2026-11-26T10:00:01.000000Z", "ERROR", "two")
    )
    b = chunk(
        ("i2", "2026-11-26T10:00:01.000000Z", "ERROR", "two"), ("i3", "2026-11-26T10:00:02.000000Z", "WARNING", "3")
    )
    assert [line["text"] for line in filter_lines([a, b], SeenIds())] == ["one", "two", "3"]
    assert [line["text"] for line in filter_lines([a, b], SeenIds(), "WARNING")] == ["two", "3"]
    since = datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC)
    assert [line["text"] for line in filter_lines([a, b], SeenIds(), None, since)] == ["two", "3"]
    assert filter_lines([{"lines": "not json"}, {"lines": 5}], SeenIds()) == []


def test_seen_ids_forget_the_oldest_beyond_their_capacity() -> None:
    seen = SeenIds(capacity=100)
    assert all(seen.first_time(f"i{n}") for n in range(150))
    assert not seen.first_time("i149")
    assert seen.first_time("i0")  # long forgotten


def test_cursors_and_floors() -> None:
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    floor = id_floor(at)
    assert len(floor) == 13 and floor.isdigit()
    assert floor_before(floor + "-w-1") == f"{int(floor) - 5000:013d}"
    assert floor_before("nonsense") == "nonsense"


def test_since_takes_durations_and_times() -> None:
    now = clock.now()
    ten = parse_since("10m")
    assert ten is not None and abs((now - ten) - timedelta(minutes=10)) < timedelta(seconds=5)
    assert parse_since("2026-11-26T10:00:00Z") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert parse_since(None) is None
    for bad in ("10 minutes", "2026-11-26T10:00:00", "tomorrow"):
        with pytest.raises(InvalidInput):
            parse_since(bad)


def test_the_cli_colours_severities_only_for_a_terminal_and_never_prints_escapes_from_data() -> None:
    line = {
        "at": "2026-11-26T10:00:00.000000Z",
        "severity": "ERROR",
        "text": "bad \x1b]0;pwned\x07thing\nsecond line",
        "source": "build",
        "deploymentId": "0123456789ab",
    }
    plain = Printer(io.StringIO(), colour=False, show_deployment=True).format(line)
    assert "\x1b" not in plain and "\x07" not in plain
    assert "ERROR" in plain and "build 012345" in plain and "bad thing" in plain
    first, second = plain.split("\n")
    assert second.strip() == "second line" and len(second) - len("second line") == first.index("bad thing")
    coloured = Printer(io.StringIO(), colour=True, show_deployment=False).format(line)
    assert "\x1b[31mERROR" in coloured and "pwned" not in coloured


def test_the_cli_reads_like_gh_and_gcloud() -> None:
    args = parser().parse_args(["logs", "shop", "-f", "--since", "10m", "--severity", "error", "-d", "0123456789ab"])
    assert (args.app, args.follow, args.since, args.severity, args.deployment) == (
        "shop",
        True,
        "10m",
        "ERROR",
        "0123456789ab",
    )
