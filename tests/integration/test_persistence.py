"""`make run` keeps local Firestore state across restarts: export on stop, import on start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.cloud import firestore

from devstack import emulators
from devstack.processes import Child, free_port, http_ok, wait_until


def _start(port: int, tmp: Path, data_dir: Path) -> Child:
    child = emulators.firestore(port, tmp / "logs", dict(os.environ), data_dir).start()
    wait_until(http_ok(f"http://127.0.0.1:{port}/"), 60, "firestore", child)
    return child


def _db(port: int, monkeypatch: pytest.MonkeyPatch) -> firestore.Client:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    return firestore.Client(project="persist-test")


def test_documents_survive_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "firestore-data"
    port = free_port()
    first = _start(port, tmp_path, data_dir)
    try:
        _db(port, monkeypatch).collection("apps").document("a1").set({"tenantId": "t", "name": "shop"})
        emulators.export_firestore(f"127.0.0.1:{port}", "persist-test", data_dir)
    finally:
        first.stop()

    port = free_port()
    second = _start(port, tmp_path, data_dir)
    try:
        assert _db(port, monkeypatch).collection("apps").document("a1").get().to_dict() == {
            "tenantId": "t",
            "name": "shop",
        }
    finally:
        second.stop()
