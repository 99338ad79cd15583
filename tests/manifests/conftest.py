"""Render every overlay and component combination once per test session."""

from __future__ import annotations

import pytest

from tests.manifests.rendering import Rendering, render_all


@pytest.fixture(scope="session")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> list[Rendering]:
    return render_all(tmp_path_factory.mktemp("kustomize"))


@pytest.fixture(scope="session")
def overlay(renderings: list[Rendering]):
    """Look up an overlay's rendering by name: overlay("kind")."""
    by_name = {rendering.name: rendering for rendering in renderings}

    def lookup(name: str) -> Rendering:
        return by_name[f"overlay {name}"]

    return lookup
