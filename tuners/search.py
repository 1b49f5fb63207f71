"""Search strategies over an encoder's quality setting.

:func:`search_quality` is what :func:`precodec.optimize` calls.  This first
version is a bisection over ``quality`` (like jpeg-recompress); the learned
predictor replaces the starting point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..metrics import get_metric
from ..record import DecisionRecord
from ..targets import Target

__all__ = ["Encoded", "search_quality", "encode_and_score"]


@dataclass
class Encoded:
    data: bytes
    params: dict[str, Any]
    quality: dict[str, float] = field(default_factory=dict)


def encode_and_score(codec: Any, image: Any, ref: np.ndarray, params: Mapping[str, Any], *, metric: str | None,
                     metadata: Any, record: DecisionRecord) -> Encoded:
    """Encode once, decode, score (when ``metric``), and log the candidate in ``record``."""
    t = time.perf_counter()
    data = codec.encode(image, dict(params), metadata=metadata)
    record.encodes += 1
    record.time_ms["encode"] = record.time_ms.get("encode", 0.0) + (time.perf_counter() - t) * 1e3
    q: dict[str, float] = {}
    if metric:
        t = time.perf_counter()
        dec = np.asarray(codec.decode(data).convert("RGB" if ref.ndim == 3 else "L"))
        q[metric] = float(get_metric(metric)(ref, dec))
        record.metric_runs += 1
        record.time_ms["metric"] = record.time_ms.get("metric", 0.0) + (time.perf_counter() - t) * 1e3
    record.candidates.append({"params": dict(params), "bytes": len(data), **q})
    return Encoded(data, dict(params), q)


def search_quality(codec: Any, image: Any, ref: np.ndarray, *, target: Target | None, fixed: Mapping[str, Any],
                   max_bytes: int | None, metadata: Any, record: DecisionRecord) -> Encoded:
    """Smallest ``quality`` meeting ``target`` (bisection), honouring ``max_bytes``."""
    space = codec.space
    base = space.validate(fixed)
    if target is None:
        out = encode_and_score(codec, image, ref, base, metric=None, metadata=metadata, record=record)
        record.reason = "fixed parameters"
        return out
    qp = space["quality"]
    lo, hi = int(qp.low or 0), int(qp.high or 100)
    best: Encoded | None = None
    top: Encoded | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = encode_and_score(codec, image, ref, {**base, "quality": mid}, metric=target.metric,
                                metadata=metadata, record=record)
        ok = target.met(cand.quality[target.metric]) and (max_bytes is None or len(cand.data) <= max_bytes)
        if top is None or cand.quality[target.metric] > top.quality[target.metric]:
            top = cand
        if ok:
            best, hi = cand, mid - 1
        else:
            lo = mid + 1
    if best is None:
        assert top is not None
        record.target_met = False
        record.reason = f"bisection: target {target} not reached; best {target.metric} {top.quality[target.metric]:.2f}"
        return top
    record.target_met = True
    record.reason = f"bisection: smallest quality reaching {target}"
    return best
