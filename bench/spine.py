"""The deploy spine's own overhead per hop, over 20 deploys of the example app.

submit:  the api accepted the deploy (deployment.createdAt) -> Cloud Build accepted the build
         (build.createTime): the api, Pub/Sub push, deploy_requested and the build submission.
rollout: the build finished (build.finishTime, just before SUCCESS is published) -> the deployment
         is live in Firestore: Pub/Sub push, build_finished, the revision starting, traffic, the
         URL probe and the final transaction. The build's own work (fetch, install) is excluded.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from google.cloud.devtools import cloudbuild_v1

from bench.stats import percentile
from devgem.adapters.google_clients import client_kwargs
from devgem.config import settings
from devstack import example_repos, watch
from devstack.api_client import Api
from devstack.stack import Stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deploys", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devgem-bench-") as tmp, Stack(Path(tmp)) as stack:
        api = Api(stack, tenant="bench")
        repo = example_repos.example("hello-python", Path(tmp) / "repos")
        app = api.create_app(str(repo))
        builds = cloudbuild_v1.CloudBuildClient(**client_kwargs(settings().cloud_build_endpoint))
        submit_ms: list[float] = []
        rollout_ms: list[float] = []
        total_s: list[float] = []
        for i in range(args.deploys):
            started = time.monotonic()
            deployment = api.deploy(app["id"])
            final = watch.follow_deployment(deployment["id"], timeout=300)
            if final.get("status") != "live":
                raise SystemExit(f"deploy {i + 1} ended {final.get('status')}: {final.get('error')}")
            s = settings()
            build = builds.get_build(name=f"projects/{s.project}/locations/{s.region}/builds/{final['buildId']}")
            submit_ms.append((build.create_time - final["createdAt"]).total_seconds() * 1000)
            rollout_ms.append((final["stageTimes"]["live"] - build.finish_time).total_seconds() * 1000)
            heard_ms = (final["stageTimes"]["deploying"] - build.finish_time).total_seconds() * 1000
            total_s.append(time.monotonic() - started)
            print(
                f"deploy {i + 1:2d}/{args.deploys}: submit {submit_ms[-1]:7.1f} ms  "
                f"rollout {rollout_ms[-1]:7.1f} ms (SUCCESS heard after {heard_ms:6.1f} ms)  "
                f"whole deploy {total_s[-1]:5.2f} s",
                flush=True,
            )
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"whole deploy (build included): p50 {percentile(total_s, 50):.2f} s  p99 {percentile(total_s, 99):.2f} s")
    print(
        f"spine: deploys={args.deploys} "
        f"submit_p50_ms={percentile(submit_ms, 50):.0f} submit_p99_ms={percentile(submit_ms, 99):.0f} "
        f"rollout_p50_ms={percentile(rollout_ms, 50):.0f} rollout_p99_ms={percentile(rollout_ms, 99):.0f}"
    )


if __name__ == "__main__":
    main()
