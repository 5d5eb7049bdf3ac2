"""The README's "How events flow" table agrees with devgem.topology, the use cases and the collections."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from devgem import topology
from devgem.adapters import collections

ROOT = Path(__file__).resolve().parents[2]


def _rows() -> list[dict[str, str]]:
    text = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- events-table -->\n(.*?)<!-- /events-table -->", text, re.S)
    assert table, "README.md has no events table between <!-- events-table --> markers"
    lines = [line for line in table.group(1).strip().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _entry_point_source(consumer: str) -> str:
    """The body of the consumer's entry point in functions/, read without importing it."""
    for path in (ROOT / "functions").glob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name == consumer:
                return ast.get_source_segment(source, node) or ""
    raise AssertionError(f"no entry point {consumer} in functions/")


def test_every_topic_has_exactly_one_row() -> None:
    topics = [_names(r["topic"])[0] for r in _rows() if _names(r["topic"])]
    assert sorted(topics) == sorted(topology.TOPICS)


def test_every_consumer_is_declared_with_the_topic_its_row_names() -> None:
    consumers: set[str] = set()
    for row in _rows():
        names = _names(row["consumer"])
        if not names:
            continue
        name = names[0]
        consumers.add(name)
        topic = _names(row["topic"])[0] if _names(row["topic"]) else None
        if "worker" in row["consumer"]:
            assert topology.worker(name).topic == topic
        else:
            assert topology.function(name).trigger_topic == topic
    assert consumers == {f.name for f in topology.FUNCTIONS} | {w.name for w in topology.WORKERS}


def test_every_use_case_exists_and_its_consumer_calls_it() -> None:
    http_api = (ROOT / "shared/devgem/entrypoints/http_api.py").read_text()
    for row in _rows():
        if not _names(row["consumer"]):
            continue
        consumer = _names(row["consumer"])[0]
        body = _entry_point_source(consumer)
        for use_case in _names(row["use case"]):
            module = importlib.import_module(f"devgem.usecases.{use_case}")
            assert inspect.getdoc(module), f"devgem.usecases.{use_case} says what it is for"
            calls = http_api if "http_api" in body else body
            assert re.search(rf"\b{use_case}\b", calls), f"{consumer} does not call {use_case}"


def test_every_written_collection_is_a_named_collection() -> None:
    named = {v for k, v in vars(collections).items() if k.isupper()}
    for row in _rows():
        written = [n for n in _names(row["writes"]) if n not in topology.TOPICS]
        assert set(written) <= named, f"{row['topic']}: {set(written) - named} are not in adapters/collections.py"
