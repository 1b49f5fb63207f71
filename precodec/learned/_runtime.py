"""The learned codec's model: four ONNX sessions plus the integer tables.

Probability-model selection is exact on every machine:

* the hyper-latent ``z`` is an integer tensor coded with fixed integer
  frequency tables (one per channel);
* the hyper-synthesis is a fixed-point graph (integer weights, integer
  activations, every accumulator bounded below 2^23, hence exact in float32
  whatever the evaluation order); its outputs are rounded with ``rint`` to
  integers: means in units of 1/256 and scale-table positions in units of
  1/256 -> the index ``(pos + 128) >> 8`` into a fixed table of 64 scales;
* each scale index selects a fixed integer frequency table (shipped, not
  recomputed with the platform's erf).

Only the synthesis (latent -> pixels) runs in ordinary float32, so decoded
pixels may differ in the last bit between machines, while the symbols parsed
from a stream never do.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError

PARTS = ("analysis", "synthesis", "hyper-analysis", "hyper-synthesis")
_LOCK = threading.Lock()
_CACHE: dict[tuple[str, int], "LearnedModel"] = {}


def _constriction():
    try:
        import constriction
    except ImportError:
        raise MissingDependencyError(
            "the learned codec needs the constriction entropy coder: pip install precodec[learned]"
        ) from None
    return constriction


@dataclass
class LearnedModel:
    """A loaded learned-codec model (use :func:`get_model`)."""

    name: str
    threads: int
    sessions: dict[str, Any]
    codec: dict[str, Any]
    digest: bytes
    sha256: dict[str, str]
    _models: dict[str, Any] = field(default_factory=dict)
    _ybits: np.ndarray | None = None

    # -- constants -----------------------------------------------------
    @property
    def n_rates(self) -> int:
        return len(self.codec["gain"])

    @property
    def M(self) -> int:
        return int(self.codec["M"])

    @property
    def down(self) -> int:
        return int(self.codec["down"])

    def gain(self, rate: int) -> np.ndarray:
        return np.asarray(self.codec["gain"][rate], np.float32)[None, :, None, None]

    def igain(self, rate: int) -> np.ndarray:
        return np.asarray(self.codec["igain"][rate], np.float32)[None, :, None, None]

    # -- entropy models (constriction, built once from the integer tables) --
    def _table_model(self, kind: str, index: int):
        """Categorical model built once from the integer table ``codec[f"{kind}_tables"][index]``."""
        key = f"{kind}{index}"
        m = self._models.get(key)
        if m is None:
            f = np.asarray(self.codec[f"{kind}_tables"][index], np.float64)
            m = self._models[key] = _constriction().stream.model.Categorical(f / f.sum(), perfect=False)
        return m

    @property
    def ybits(self) -> np.ndarray:
        """Ideal code lengths ``-log2 p`` of the y tables: ``ybits[k, s + y_half[k]]`` (inf outside a table)."""
        if self._ybits is None:
            tables = self.codec["y_tables"]
            b = np.full((len(tables), max(len(t) for t in tables)), np.inf)
            for k, t in enumerate(tables):
                f = np.asarray(t, np.float64)
                b[k, : len(t)] = -np.log2(f / f.sum())
            self._ybits = b
        return self._ybits

    def z_model(self, c: int):
        return self._table_model("z", c)

    def y_model(self, k: int):
        return self._table_model("y", k)

    # -- networks ------------------------------------------------------
    def _run(self, part: str, x: np.ndarray) -> np.ndarray:
        sess = self.sessions[part]
        return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]

    def analysis(self, x: np.ndarray) -> np.ndarray:
        return self._run("analysis", x)

    def hyper_analysis(self, y: np.ndarray) -> np.ndarray:
        return self._run("hyper-analysis", y)

    def synthesis(self, y: np.ndarray) -> np.ndarray:
        return self._run("synthesis", y)

    def hyper_synthesis_raw(self, z: np.ndarray) -> np.ndarray:
        """The fixed-point graph's output (integer-valued float32)."""
        return self._run("hyper-synthesis", z.astype(np.float32))

    def hyper_synthesis(self, z: np.ndarray, raw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Integer means (units of 1/256) and scale indices for integer hyper-latents ``z``."""
        if raw is None:
            raw = self.hyper_synthesis_raw(z)
        q = np.rint(raw.astype(np.float64)).astype(np.int64)  # absorbs any evaluation error < 0.5
        M = self.M
        mean_q = q[:, :M]
        frac = int(self.codec["out_frac"])
        idx = np.clip((q[:, M:] + (1 << (frac - 1))) >> frac, 0, len(self.codec["scales"]) - 1)
        return mean_q, idx


def _digest(shas: dict[str, str]) -> bytes:
    h = hashlib.sha256()
    for part in PARTS:
        h.update(shas[part].encode())
    return h.digest()[:8]


def get_model(name: str, *, threads: int | None = None) -> LearnedModel:
    """Load (once per thread count) the four parts of model ``name``, SHA-256 verified."""
    key = (name, int(threads or 0))
    with _LOCK:
        m = _CACHE.get(key)
        if m is not None:
            return m
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - runtime dependency
            raise MissingDependencyError("onnxruntime is required: pip install onnxruntime") from None
        from .. import models

        _constriction()
        sessions, shas = {}, {}
        codec = None
        for part in PARTS:
            pname = f"{name}-{part}"
            path = models.model_path(pname)  # raises ModelError on a missing file or SHA mismatch
            shas[part] = models.manifest(pname)["sha256"]
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            if threads:
                opts.intra_op_num_threads = int(threads)
                opts.inter_op_num_threads = 1
            if part == "hyper-synthesis":
                # keep the fixed-point graph exactly as written (no fusions that move the rounding)
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelError(f"model {pname!r} cannot be loaded by onnxruntime: {exc}") from None
            sessions[part] = sess
            if part == "hyper-synthesis":
                meta = sess.get_modelmeta().custom_metadata_map
                try:
                    codec = json.loads(meta["precodec.codec"])
                except (KeyError, ValueError) as exc:
                    raise ModelError(f"model {pname!r} lacks its codec tables ({exc})") from None
        assert codec is not None
        if codec.get("model") != name:
            raise ModelError(f"model files of {name!r} carry tables of {codec.get('model')!r}")
        m = LearnedModel(name, int(threads or 0), sessions, codec, _digest(shas), shas)
        _CACHE[key] = m
        return m
