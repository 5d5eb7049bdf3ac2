"""The official Firestore and Pub/Sub emulators, started with java directly (the gcloud wrapper
orphans its java child when it is killed)."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import requests

from devstack.processes import Child

SDK_CANDIDATES = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
INSTALL_HINT = (
    "Install them with: sudo apt-get install google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator "
    "openjdk-17-jre-headless (or `gcloud components install cloud-firestore-emulator pubsub-emulator`), "
    "or point CLOUDSDK_ROOT at your Google Cloud SDK."
)


class MissingPrerequisite(RuntimeError):
    pass


def sdk_root() -> Path:
    candidates = [os.environ["CLOUDSDK_ROOT"]] if os.environ.get("CLOUDSDK_ROOT") else []
    gcloud = shutil.which("gcloud")
    if gcloud:
        candidates.append(str(Path(gcloud).resolve().parent.parent))
    for c in [*candidates, *SDK_CANDIDATES]:
        if (Path(c) / "platform").is_dir():
            return Path(c)
    raise MissingPrerequisite(f"The Google Cloud SDK emulators were not found. {INSTALL_HINT}")


def java() -> str:
    java = shutil.which("java")
    if not java:
        raise MissingPrerequisite(f"java was not found; the emulators need Java 11 or newer. {INSTALL_HINT}")
    return java


def firestore_jar() -> Path:
    jar = sdk_root() / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    if not jar.exists():
        raise MissingPrerequisite(f"The Firestore emulator is not installed ({jar}). {INSTALL_HINT}")
    return jar


def pubsub_jar() -> Path:
    jars = sorted(glob.glob(str(sdk_root() / "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar")))
    if not jars:
        raise MissingPrerequisite(f"The Pub/Sub emulator is not installed. {INSTALL_HINT}")
    return Path(jars[-1])


def firestore(port: int, log_dir: Path, env: dict[str, str], data_dir: Path | None = None) -> Child:
    args = [
        java(),
        "-Xmx1g",
        "-cp",
        str(firestore_jar()),
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    if data_dir is not None:
        metadata = sorted((data_dir / "current").glob("**/*.overall_export_metadata"))
        if metadata:
            args.append(f"--import-data={metadata[-1]}")
    return Child("firestore-emulator", args, env, log_dir / "firestore-emulator.log")


def pubsub(port: int, log_dir: Path, env: dict[str, str]) -> Child:
    args = [java(), "-Xmx512m", "-jar", str(pubsub_jar()), "--host=127.0.0.1", f"--port={port}"]
    return Child("pubsub-emulator", args, env, log_dir / "pubsub-emulator.log")


def export_firestore(host: str, project: str, data_dir: Path) -> None:
    """Save the emulator's data for the next start (its own --export-on-exit fails on SIGTERM).

    The export goes to a new folder that replaces the old one only once complete.
    """
    fresh, current = data_dir / "new", data_dir / "current"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    body = {"database": f"projects/{project}/databases/(default)", "export_directory": str(fresh)}
    requests.post(f"http://{host}/emulator/v1/projects/{project}:export", json=body, timeout=60).raise_for_status()
    shutil.rmtree(current, ignore_errors=True)
    fresh.rename(current)
