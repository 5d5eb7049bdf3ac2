"""The topology is the one source of truth: functions/main.py and functions/workers.py export exactly
its entry points."""

import ast
import importlib.util
from pathlib import Path

from devgem import topology

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"
WORKERS = Path(__file__).resolve().parents[2] / "functions" / "workers.py"


def _entry_points() -> dict[str, str]:
    """Decorated functions in functions/main.py and their kind (http or cloud_event)."""
    found = {}
    for node in ast.parse(MAIN.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                is_ff = isinstance(dec, ast.Attribute) and isinstance(dec.value, ast.Name)
                if is_ff and dec.value.id == "functions_framework":  # type: ignore[attr-defined]
                    found[node.name] = dec.attr  # type: ignore[attr-defined]
    return found


def test_main_exports_exactly_the_declared_functions() -> None:
    assert topology.FUNCTIONS, "an empty topology would make every check here pass"
    assert set(_entry_points()) == {f.name for f in topology.FUNCTIONS}


def test_http_and_event_kinds_match_the_declaration() -> None:
    kinds = _entry_points()
    assert {"http", "cloud_event"} <= set(kinds.values())
    for f in topology.FUNCTIONS:
        assert kinds[f.name] == ("cloud_event" if f.trigger_topic else "http"), f.name


def test_workers_py_exports_exactly_the_declared_workers() -> None:
    spec = importlib.util.spec_from_file_location("workers", WORKERS)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ENTRY_POINTS = module.ENTRY_POINTS
    assert ENTRY_POINTS and set(ENTRY_POINTS) == {w.name for w in topology.WORKERS}
    assert all(ENTRY_POINTS[name].__name__ == name for name in ENTRY_POINTS)


def test_every_consumed_topic_is_a_declared_topic() -> None:
    assert list(topology.event_functions()) and topology.WORKERS
    for f in topology.event_functions():
        assert f.trigger_topic in topology.TOPICS
    for w in topology.WORKERS:
        assert w.topic in topology.TOPICS


def test_a_worker_is_redelivered_soon_after_it_dies() -> None:
    """Messages a dead worker held come back after the ack deadline; Pub/Sub allows 10..600 s."""
    assert topology.WORKERS
    for w in topology.WORKERS:
        assert 10 <= w.ack_deadline_seconds <= 60


def test_every_consumer_has_its_own_subscription_and_dead_letter_topic() -> None:
    subs = [f.subscription for f in topology.event_functions()] + [w.subscription for w in topology.WORKERS]
    dlts = list(topology.dead_letter_topics())
    assert subs and len(set(subs)) == len(subs) == len(dlts) == len(set(dlts))
    assert not set(dlts) & set(topology.TOPICS)
