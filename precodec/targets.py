"""Quality targets: ``"ssimulacra2:80"``, ``"psnr:40"``, ``"ssim:0.95"``, ``"ms-ssim:0.98"`` or a preset.

Presets (SSIMULACRA2 scores, measured against the caller's original):

========== ===== ==========================================================
preset     score meaning
========== ===== ==========================================================
``low``    50    visible artefacts on inspection; thumbnails, previews
``medium`` 70    "web" quality; artefacts hard to see at 1:1
``high``   80    visually lossless for most viewers at 1:1
``max``    90    near-transparent even on flip tests
========== ===== ==========================================================

Example
-------
>>> Target.parse("ssimulacra2:80")
Target(metric='ssimulacra2', value=80.0)
>>> Target.parse("high").value
80.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import OptionError

__all__ = ["Target", "PRESETS"]

PRESETS: dict[str, tuple[str, float]] = {
    "low": ("ssimulacra2", 50.0),
    "medium": ("ssimulacra2", 70.0),
    "high": ("ssimulacra2", 80.0),
    "max": ("ssimulacra2", 90.0),
}

_RANGES: dict[str, tuple[float, float]] = {
    "ssimulacra2": (-100.0, 100.0),
    "psnr": (0.0, 100.0),
    "ssim": (0.0, 1.0),
    "ms-ssim": (0.0, 1.0),
}


@dataclass(frozen=True)
class Target:
    """A minimum score of a metric (higher is better for every supported metric)."""

    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in _RANGES:
            raise OptionError(f"unknown target metric {self.metric!r}; known: {sorted(_RANGES)}")
        lo, hi = _RANGES[self.metric]
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and lo <= self.value <= hi):
            raise OptionError(f"target {self.metric}:{self.value!r} is out of range [{lo}, {hi}]")

    @classmethod
    def parse(cls, spec: "str | Target") -> "Target":
        """Parse ``"metric:value"`` or a preset name."""
        if isinstance(spec, Target):
            return spec
        if not isinstance(spec, str):
            raise OptionError(f"target must be a string like 'ssimulacra2:80', got {spec!r}")
        s = spec.strip().lower()
        if s in PRESETS:
            m, v = PRESETS[s]
            return cls(m, v)
        metric, sep, value = s.partition(":")
        if not sep:
            raise OptionError(f"target {spec!r} must look like 'ssimulacra2:80' or be one of {sorted(PRESETS)}")
        metric = metric.replace("_", "-").strip()
        if metric in ("ssimulacra", "s2"):
            metric = "ssimulacra2"
        try:
            v = float(value)
        except ValueError:
            raise OptionError(f"target value {value!r} in {spec!r} is not a number") from None
        return cls(metric, v)

    def met(self, score: float) -> bool:
        """True when ``score`` reaches the target."""
        return score >= self.value

    def __str__(self) -> str:
        return f"{self.metric}:{self.value:g}"
