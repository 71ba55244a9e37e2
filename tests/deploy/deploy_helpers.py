"""Helpers for the deployment tests: paths, YAML loading and the kustomize render (imported by the tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"
ALL_IN_ONE = DEPLOY / "deployment.yaml"
DASHBOARDS = REPO / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
SRC = REPO / "src"

# Kubernetes versions whose schemas every manifest must pass in strict mode.
K8S_VERSIONS = ("1.33.0", "1.37.0")

HEADER_LINES = 2  # deploy/deployment.yaml starts with a 2-line "generated" comment


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_base() -> str:
    """`kubectl kustomize deploy/base`; skips outside CI when kubectl is missing, fails in CI."""
    exe = kubectl()
    if exe is None:
        if in_ci():
            pytest.fail("kubectl is required in CI (CI=true) to render deploy/base, but it is not on PATH")
        pytest.skip("kubectl is not installed (and CI is not 'true'): cannot render deploy/base")
    proc = subprocess.run([exe, "kustomize", str(BASE)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize deploy/base failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected exactly one {kind} {name or ''} in the render, found {len(hits)}"
    return hits[0]


def collector_config() -> dict:
    return load_yaml(BASE / "otel-collector" / "config.yaml")


def dashboard_files() -> list[Path]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files, "no dashboard JSON under dashboards/"
    return files
