"""Registry of the models shipped inside the package.

Each model is an ONNX file ``<name>.onnx`` beside a manifest ``<name>.json``
(name, version, sha256, training data, measured results).  :func:`load` checks
the file's SHA-256 against the manifest before onnxruntime sees it, so a
corrupt or swapped file fails with :class:`~precodec.errors.ModelError`.
Runtime never imports torch.

Example
-------
>>> from precodec import models
>>> isinstance(models.list_models(), list)
True
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelError

__all__ = ["MODEL_DIR", "list_models", "manifest", "model_path", "load", "sha256_file"]

MODEL_DIR = Path(__file__).resolve().parent
_LOCK = threading.Lock()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_models() -> list[str]:
    """Names of the models whose manifest is shipped."""
    return sorted(p.stem for p in MODEL_DIR.glob("*.json"))


@functools.lru_cache(maxsize=None)
def manifest(name: str) -> dict[str, Any]:
    """The manifest of model ``name`` (a dict; ``sha256`` and ``file`` always present)."""
    path = MODEL_DIR / f"{name}.json"
    if not path.is_file():
        raise ModelError(f"no model called {name!r}; shipped: {list_models()}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelError(f"manifest of {name!r} is not valid JSON: {exc}") from None
    for key in ("name", "version", "sha256", "file"):
        if key not in data:
            raise ModelError(f"manifest of {name!r} lacks {key!r}")
    return data


def model_path(name: str, *, verify: bool = True) -> Path:
    """Path of the model file, SHA-256 verified against the manifest."""
    m = manifest(name)
    path = MODEL_DIR / m["file"]
    if not path.is_file():
        raise ModelError(f"model file {path.name} of {name!r} is missing")
    if verify:
        actual = sha256_file(path)
        if actual != m["sha256"]:
            raise ModelError(
                f"model {name!r} v{m['version']}: sha256 {actual[:16]}... does not match the manifest's "
                f"{m['sha256'][:16]}...; reinstall precodec"
            )
    return path


_SESSIONS: dict[tuple[str, int], Any] = {}


def load(name: str, *, threads: int | None = None) -> Any:
    """Return an ``onnxruntime.InferenceSession`` of model ``name`` (cached per thread count).

    Parameters
    ----------
    name : str
        Model name as in :func:`list_models`.
    threads : int, optional
        Intra-op threads (default: onnxruntime's choice).
    """
    key = (name, int(threads or 0))
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is not None:
            return sess
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a runtime dependency
            raise MissingDependencyError("onnxruntime is required: pip install onnxruntime") from None
        path = model_path(name)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"model {name!r} cannot be loaded by onnxruntime: {exc}") from None
        _SESSIONS[key] = sess
        return sess
