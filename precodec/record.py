"""The per-item decision record and the result of :func:`precodec.optimize`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DecisionRecord", "Result"]


@dataclass
class DecisionRecord:
    """What was predicted, applied and measured for one item, and why.

    Every field is JSON-serialisable; :meth:`to_json` gives one line.

    Attributes
    ----------
    source : str or None
        Where the input came from (path) when known.
    format, backend : str
        Output format and the encoder backend that produced it.
    target : str or None
        The quality target (``"ssimulacra2:80"``), None for fixed settings.
    reference : str
        What quality was measured against (``"original"``, ``"denoised"``).
    features : dict
        Image features used for prediction (content class, noise level...).
    predicted : dict
        Parameters the predictor proposed (empty when no predictor ran).
    applied : dict
        Parameters of the returned bytes.
    measured : dict
        Scores of the returned bytes (metric -> value).
    bytes_in, bytes_out : int or None
        Size of the input (encoded) and of the output.
    encodes, metric_runs : int
        Work spent.
    time_ms : dict
        Wall time per stage.
    preprocessing : dict
        Denoising etc.: what ran, strength, why (not).
    candidates : list of dict
        Every encode tried: params, bytes, score.
    target_met : bool or None
        Whether the measured score of the returned bytes reaches the target
        (False: unreachable at the best setting, or capped by ``max_bytes``).
    fallback : bool
        True when the learned path was abandoned for the plain one.
    learned : bool
        True when a learned model (the parameter predictor) ran.
    strategy : str
        What produced the bytes: ``"predict"``, ``"bisect"``, ``"oracle"``,
        ``"fixed"`` or ``"bytes-cap"``.
    config : str
        The configuration of the result (``"mozjpeg:420"``, see
        :mod:`precodec.tuners.space`).
    space : dict
        Format -> configurations that were allowed.
    ood : list of str
        Features outside the predictor's training range (when it fell back).
    compare : dict
        With ``compare=True``: the learned and the plain result side by side.
    decode_ms : float or None
        Measured decode time of the returned bytes.
    reason : str
        Human-readable why.
    notes : list of str
    """

    source: str | None = None
    format: str = ""
    backend: str = ""
    target: str | None = None
    reference: str = "original"
    features: dict[str, Any] = field(default_factory=dict)
    predicted: dict[str, Any] = field(default_factory=dict)
    applied: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    bytes_in: int | None = None
    bytes_out: int | None = None
    encodes: int = 0
    metric_runs: int = 0
    time_ms: dict[str, float] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    target_met: bool | None = None
    fallback: bool = False
    learned: bool = False
    strategy: str = ""
    config: str = ""
    space: dict[str, Any] = field(default_factory=dict)
    ood: list[str] = field(default_factory=list)
    compare: dict[str, Any] = field(default_factory=dict)
    decode_ms: float | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=_json_default)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, (bytes, bytearray)):
        return f"<{len(o)} bytes>"
    return str(o)


@dataclass(frozen=True)
class Result:
    """The output of :func:`precodec.optimize`.

    Attributes
    ----------
    data : bytes
        The encoded file (plain JPEG/AVIF: any decoder reads it).
    format : str
        ``"jpeg"``, ``"avif"``...
    params : dict
        Encoder settings used.
    quality : dict
        Measured scores against the reference (metric -> value).
    record : DecisionRecord
    """

    data: bytes
    format: str
    params: dict[str, Any]
    quality: dict[str, float]
    record: DecisionRecord

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return {"jpeg": ".jpg", "avif": ".avif", "zstd": ".zst", "learned": ".pcl"}.get(self.format, "." + self.format)

    def save(self, path: str) -> None:
        """Write :attr:`data` to ``path`` atomically (temporary file, fsync, rename)."""
        from .io import atomic_write

        atomic_write(path, self.data)
