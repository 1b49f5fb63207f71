"""Shared fixtures: generated images, and the ../shared datasets when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the repository (or $PRECODEC_SHARED), None when absent."""
    env = os.environ.get("PRECODEC_SHARED")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared"]:
        if (cand / "datasets").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    if d is None:
        pytest.skip("../shared datasets are not present")
    return d


def make_photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth, textured synthetic 'photo' (uint8 RGB) with gradients, edges and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            128 + 80 * np.sin(x / 9.0 + seed) * np.cos(y / 13.0),
            128 + 70 * np.cos(x / 17.0) * np.sin(y / 7.0 + seed),
            110 + 60 * np.sin((x + y) / 11.0),
        ],
        axis=-1,
    )
    base[h // 3 : h // 2, w // 4 : w // 2] += 50  # a hard-edged patch
    base += rng.normal(0, 4, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture
def photo() -> np.ndarray:
    return make_photo()


def run_cli(*args: str, env: dict | None = None, cwd: str | os.PathLike | None = None, timeout: float = 600,
            input: str | bytes | None = None, text: bool = True):
    """Run ``python -m precodec ARGS`` as a subprocess of the installed package.

    The working directory defaults to a fresh temporary folder: running from the
    repository root would put the source tree on ``sys.path`` and shadow the
    installed package (whose ``precodec.plugins`` etc. come from ``package-dir``).
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="precodec-cli-") as tmp:
        return subprocess.run(
            [sys.executable, "-m", "precodec", *map(str, args)], capture_output=True, text=text, input=input,
            env={**os.environ, **(env or {})}, cwd=str(cwd) if cwd is not None else tmp, timeout=timeout,
        )


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    """The :func:`run_cli` helper as a fixture: ``run_cli("info", "--json")``."""
    return run_cli


@pytest.fixture(name="make_photo")
def make_photo_fixture():
    """The :func:`make_photo` factory, as a fixture (tests never import conftest)."""
    return make_photo
