"""Image quality metrics: SSIMULACRA2, PSNR, SSIM and MS-SSIM.

All take ``(reference, distorted)`` as numpy uint8 arrays (H, W, 3) RGB or
(H, W) grey, or PIL images, and return a float (higher is better).

Example
-------
>>> import numpy as np
>>> from precodec.metrics import score
>>> a = np.full((64, 64, 3), 128, np.uint8)
>>> round(score("ssimulacra2", a, a))
100
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import OptionError

__all__ = ["METRICS", "score", "ssimulacra2", "psnr", "ssim", "ms_ssim", "get_metric"]


def ssimulacra2(reference: Any, distorted: Any) -> float:
    """SSIMULACRA 2.1 score (100 = identical); see :mod:`precodec.metrics.ssimulacra2`."""
    from .ssimulacra2 import ssimulacra2 as f

    return f(reference, distorted)


def psnr(reference: Any, distorted: Any) -> float:
    """PSNR in dB; see :mod:`precodec.metrics.classic`."""
    from .classic import psnr as f

    return f(reference, distorted)


def ssim(reference: Any, distorted: Any) -> float:
    """SSIM; see :mod:`precodec.metrics.classic`."""
    from .classic import ssim as f

    return f(reference, distorted)


def ms_ssim(reference: Any, distorted: Any) -> float:
    """MS-SSIM; see :mod:`precodec.metrics.classic`."""
    from .classic import ms_ssim as f

    return f(reference, distorted)


#: metric name -> function; names as used in targets (``"ssimulacra2:80"``)
METRICS: dict[str, Callable[[Any, Any], float]] = {
    "ssimulacra2": ssimulacra2,
    "psnr": psnr,
    "ssim": ssim,
    "ms-ssim": ms_ssim,
}


def get_metric(name: str) -> Callable[[Any, Any], float]:
    """Return the metric function called ``name`` (``ssimulacra2``, ``psnr``, ``ssim``, ``ms-ssim``)."""
    try:
        return METRICS[name.lower()]
    except KeyError:
        raise OptionError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def score(metric: str, reference: Any, distorted: Any) -> float:
    """Score ``distorted`` against ``reference`` with the metric called ``metric``."""
    return float(get_metric(metric)(reference, distorted))
