"""Headless fixtures: run scripts/qgis_process.sh (qgis_process with the plugin in a throwaway profile)."""

import json
import subprocess

import pytest


@pytest.fixture(scope="session")
def qgis_process(repo_root):
    """Run qgis_process with the plugin loaded; returns the CompletedProcess (text output)."""
    script = str(repo_root / "scripts" / "qgis_process.sh")

    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([script, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    return run


@pytest.fixture(scope="session")
def run_json(qgis_process):
    """``qgis_process --json run ALG -- KEY=VALUE ...``; returns (returncode, parsed JSON or None, stderr)."""

    def run(algorithm: str, **parameters) -> tuple:
        args = ["--json", "run", algorithm, "--"]
        for key, value in parameters.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                args.append(f"{key}={item}")
        done = qgis_process(*args)
        start = done.stdout.find("{")
        payload = json.loads(done.stdout[start:]) if done.returncode == 0 and start >= 0 else None
        return done.returncode, payload, done.stdout + done.stderr

    return run
