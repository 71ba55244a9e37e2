"""pytest fixtures for the deployment tests (helpers live in deploy_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_helpers import load_yaml_docs, render_base  # noqa: E402


@pytest.fixture(scope="session")
def rendered_text() -> str:
    return render_base()


@pytest.fixture(scope="session")
def rendered(rendered_text) -> list[dict]:
    docs = load_yaml_docs(rendered_text)
    assert docs, "kubectl kustomize deploy/base rendered nothing"
    return docs
