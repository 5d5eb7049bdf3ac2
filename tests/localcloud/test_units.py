"""Pure pieces of localcloud, no servers: LogEntry shape, line splitting, host parsing, filters."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from google.cloud.devtools import cloudbuild_v1

from localcloud import buildpacks
from localcloud.build_filter import compile_filter
from localcloud.failure import BuildFailure
from localcloud.logs import MAX_ENTRY, LineSplitter, LogSink, log_name, make_entry, revision_resource, rfc3339
from localcloud.pack_step import find_pack_step, resolve_inside
from localcloud.router import pick, service_of_host

RFC3339_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def test_rfc3339_has_nanoseconds_and_z() -> None:
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert RFC3339_NANOS.match(rfc3339(5))


def test_log_name_is_url_encoded() -> None:
    assert log_name("p", "run.googleapis.com/stdout") == "projects/p/logs/run.googleapis.com%2Fstdout"
    assert log_name("p", "cloudbuild") == "projects/p/logs/cloudbuild"


def test_text_line_becomes_text_payload() -> None:
    resource = revision_resource("p", "r", "svc", "svc-1")
    e = make_entry(log_name="L", resource=resource, insert_id="i1", line="hi", severity="DEFAULT", parse_json=True)
    assert e["textPayload"] == "hi" and "jsonPayload" not in e
    assert e["severity"] == "DEFAULT" and e["insertId"] == "i1" and e["logName"] == "L"
    assert e["resource"]["labels"] == {
        "service_name": "svc",
        "revision_name": "svc-1",
        "configuration_name": "svc",
        "location": "r",
        "project_id": "p",
    }
    assert RFC3339_NANOS.match(e["timestamp"]) and RFC3339_NANOS.match(e["receiveTimestamp"])


def test_json_line_becomes_json_payload_with_its_severity() -> None:
    line = '{"severity": "warn", "message": "m", "logging.googleapis.com/labels": {"k": "v"}, "n": 1}'
    e = make_entry(
        log_name="L", resource={}, insert_id="i", line=line, severity="DEFAULT", labels={"a": "b"}, parse_json=True
    )
    assert e["severity"] == "WARNING"
    assert e["jsonPayload"] == {"message": "m", "n": 1}
    assert e["labels"] == {"a": "b", "k": "v"}
    assert "textPayload" not in e


def test_json_is_not_parsed_for_build_logs_and_bad_json_stays_text() -> None:
    e = make_entry(log_name="L", resource={}, insert_id="i", line='{"severity":"ERROR"}', severity="INFO")
    assert e["textPayload"] == '{"severity":"ERROR"}' and e["severity"] == "INFO"
    e = make_entry(log_name="L", resource={}, insert_id="i", line="{not json}", severity="ERROR", parse_json=True)
    assert e["textPayload"] == "{not json}" and e["severity"] == "ERROR"


def test_line_splitter_handles_crlf_partial_lines_and_invalid_utf8() -> None:
    s = LineSplitter()
    assert s.feed(b"one\r\ntw") == ["one"]
    assert s.feed(b"o\n\xff\xfebad\n") == ["two", "\ufffd\ufffdbad"]
    assert s.feed(b"tail") == []
    assert s.flush() == ["tail"]
    assert s.flush() == []


def test_line_splitter_splits_huge_lines() -> None:
    s = LineSplitter()
    out = s.feed(b"x" * (600 * 1024) + b"\n")
    assert [len(line) for line in out] == [256 * 1024, 256 * 1024, 88 * 1024]


def test_an_entry_over_256_kib_is_split_so_log_entry_does_not_reject_it() -> None:
    published: list[bytes] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
            published.append(data)

    line = "\x1b" * 50_000 + "é" * 100_000  # escaped six-fold by JSON, then two bytes a character
    resource = revision_resource("p", "r", "s", "s-1")
    entry = make_entry(log_name="l", resource=resource, insert_id="big", line=line, severity="INFO")
    LogSink(Publisher()).emit(entry)  # type: ignore[arg-type]
    parts = [json.loads(d) for d in published]
    assert len(parts) > 1 and all(len(d) <= MAX_ENTRY for d in published)
    assert "".join(p["textPayload"] for p in parts) == line
    ids = [p["insertId"] for p in parts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_the_log_router_also_publishes_crash_signals_of_managed_revisions_to_crash_detected() -> None:
    published: list[tuple[str, str]] = []

    class Publisher:
        def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
            published.append((topic, json.loads(data)["insertId"]))

    sink = LogSink(Publisher())  # type: ignore[arg-type]
    resource = revision_resource("p", "r", "s", "s-1")
    system = log_name("p", "run.googleapis.com/varlog/system")
    managed = {"devgem-managed": "true"}
    for insert_id, text, labels in (
        ("crash", "Container called exit(3).", managed),
        ("clean", "Container called exit(0).", managed),
        ("foreign", "Container called exit(3).", {}),
    ):
        sink.emit(
            make_entry(
                log_name=system, resource=resource, insert_id=insert_id, line=text, severity="ERROR", labels=labels
            )
        )
    assert sorted(published) == [
        ("crash-detected", "crash"),
        ("log-entry", "clean"),
        ("log-entry", "crash"),
        ("log-entry", "foreign"),
    ]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("shop.localhost:8080", ("shop", "")),
        ("Shop.LOCALHOST", ("shop", "")),
        ("blue---shop.localhost:8080", ("shop", "blue")),
        ("localhost:8080", None),
        ("127.0.0.1:8080", None),
        ("a.b.localhost", None),
        ("", None),
    ],
)
def test_service_of_host(host: str, expected: tuple[str, str] | None) -> None:
    assert service_of_host(host) == expected


def test_pick_follows_percentages() -> None:
    rng = random.Random(1)
    counts = Counter(pick([("a", 90), ("b", 10), ("c", 0)], rng) for _ in range(5000))
    assert counts["c"] == 0
    assert 0.86 < counts["a"] / 5000 < 0.94


def _build(tags: list[str], status: int) -> cloudbuild_v1.Build:
    return cloudbuild_v1.Build(id="b1", project_id="p", tags=tags, status=status)


def test_list_filter() -> None:
    b = _build(["devgem", "dep-abc"], cloudbuild_v1.Build.Status.WORKING)
    assert compile_filter('tags="dep-abc"')(b)
    assert compile_filter("tags=dep-abc AND status=WORKING")(b)
    assert not compile_filter('tags="dep-abc" AND status="SUCCESS"')(b)
    assert compile_filter('tags="x" OR build_id="b1"')(b)
    assert compile_filter('status!="SUCCESS"')(b)
    assert compile_filter("")(b)


def test_pack_step_is_found_with_image_path_and_env() -> None:
    build = cloudbuild_v1.Build(
        steps=[
            cloudbuild_v1.BuildStep(name="ubuntu", args=["echo"]),
            cloudbuild_v1.BuildStep(
                name="gcr.io/k8s-skaffold/pack",
                args=["build", "img:1", "--builder", "b", "--path", "web", "--env", "A=1", "--publish"],
            ),
        ]
    )
    step = find_pack_step(build)
    assert (step.index, step.image, step.path, step.env) == (1, "img:1", "web", {"A": "1"})


def test_no_pack_step_fails_with_a_clear_message() -> None:
    build = cloudbuild_v1.Build(steps=[cloudbuild_v1.BuildStep(name="gcr.io/cloud-builders/docker", args=["build"])])
    with pytest.raises(BuildFailure, match="only buildpacks"):
        find_pack_step(build)


def test_resolve_inside_refuses_escapes(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert resolve_inside(tmp_path, "sub") == (tmp_path / "sub").resolve()
    assert resolve_inside(tmp_path, "") == tmp_path.resolve()
    assert resolve_inside(tmp_path, "../etc") is None


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        (["package.json", "index.html"], "node"),
        (["requirements.txt"], "python"),
        (["pyproject.toml"], "python"),
        (["main.py"], "python"),
        (["index.html"], "static"),
        (["Dockerfile", "requirements.txt"], "python"),
    ],
)
def test_detect(tmp_path: Path, files: list[str], kind: str) -> None:
    for f in files:
        (tmp_path / f).write_text("{}")
    assert buildpacks.detect(tmp_path, "the repository root") == kind


def test_detect_dockerfile_only_and_nothing(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(BuildFailure, match=r"no app found in the repository root: looked for package.json"):
        buildpacks.detect(tmp_path, "the repository root")
    (tmp_path / "Dockerfile").write_text("FROM scratch")
    with pytest.raises(BuildFailure, match="only has a Dockerfile") as e:
        buildpacks.detect(tmp_path, "the repository root")
    assert "requirements.txt" in e.value.detail and "package.json" in e.value.detail
