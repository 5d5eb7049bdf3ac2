"""`make bench-faults`: the platform's promises under kill -9, freezes, outages and lost events.

Runs every deploy scenario of bench.faults_deploys and the live-logs run of bench.faults_logs on one
local stack, prints each, then one line to record in the README:

    faults: deploys=N stuck=0 builds_per_deploy_max=1 lines=N lost=0 dup_pages=0 recover_p99_s=N

recover is, per deployment, the fault's end (the process started again, the outage over) -> the
deployment in a final state; it is bounded by the deadlines in devgem.domain.deadlines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import faults_deploys, faults_logs
from bench.faults_deploys import Kill, Storm
from bench.stats import percentile
from devstack.api_client import Api
from devstack.stack import Stack

RANDOM_KILLS = (
    Kill(0.1, "api"),
    Kill(0.6, "deploy_requested"),
    Kill(3.0, "build_finished"),
    Kill(6.0, "build_finished"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="how many times each deploy scenario runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devgem-bench-faults-") as tmp, Stack(Path(tmp)) as stack:
        api, repos = Api(stack, tenant="bench-faults"), Path(tmp) / "repos"
        scenarios: dict[str, Callable[[], Storm]] = {
            "claims without submits, Cloud Build thawed": lambda: faults_deploys.claims_without_submits(
                stack, api, repos, "thaw"
            ),
            "claims without submits, Cloud Build killed": lambda: faults_deploys.claims_without_submits(
                stack, api, repos, "kill"
            ),
            "build notifications never heard": lambda: faults_deploys.notifications_lost(stack, api, repos),
            "deploy requests lost": lambda: faults_deploys.requests_lost(stack, api, repos),
            "each function killed at random moments": lambda: faults_deploys.random_kills(
                stack, api, repos, RANDOM_KILLS
            ),
        }
        storms: list[Storm] = []
        for round_ in range(args.rounds):
            for name, scenario in scenarios.items():
                storm = scenario()
                storms.append(storm)
                recover = storm.recover_seconds
                print(
                    f"round {round_ + 1} {name}: {json.dumps(storm.by_status())} "
                    f"builds_max={storm.builds_per_deploy_max} recover p50 {percentile(recover, 50):.1f} s "
                    f"p99 {percentile(recover, 99):.1f} s",
                    flush=True,
                )
        logs = faults_logs.run(stack)
        print(f"logs: {json.dumps(logs)}", flush=True)
    recover_all = [s for storm in storms for s in storm.recover_seconds]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"faults: deploys={sum(len(s.deployments) for s in storms)} "
        f"stuck={sum(len(s.stuck) for s in storms)} "
        f"builds_per_deploy_max={max(s.builds_per_deploy_max for s in storms)} "
        f"lines={logs['lines']} lost={logs['lost']} dup_pages={logs['dup_pages']} "
        f"recover_p99_s={percentile(recover_all, 99):.0f}"
    )


if __name__ == "__main__":
    main()
