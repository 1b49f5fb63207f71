"""Image quality metrics: SSIMULACRA2, PSNR, SSIM and MS-SSIM.

All take ``(reference, distorted)`` as numpy uint8 arrays (H, W, 3) RGB or
(H, W) grey, or PIL images, and return a float (higher is better).
``uint16`` arrays and images with alpha are accepted too (see
:mod:`precodec.metrics.classic` and :mod:`precodec.metrics.ssimulacra2` for
the exact conventions).  To score many candidates against one original, build
a :class:`Ssimulacra2Reference` once and call its ``score`` method: the
original's half of the work is then done only once.

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

__all__ = [
    "METRICS",
    "score",
    "ssimulacra2",
    "Ssimulacra2Reference",
    "psnr",
    "ssim",
    "ms_ssim",
    "get_metric",
]


# Imported eagerly on purpose: the submodule ``ssimulacra2`` and the function
# ``ssimulacra2`` share a name, and a lazy ``from .ssimulacra2 import ...``
# would rebind ``precodec.metrics.ssimulacra2`` to the module on first use.
# Importing here once makes the package attribute the function, for good.
from .classic import ms_ssim, psnr, ssim  # noqa: E402
from .ssimulacra2 import Ssimulacra2Reference, ssimulacra2  # noqa: E402


#: metric name -> function; names as used in targets (``"ssimulacra2:80"``)
METRICS: dict[str, Callable[[Any, Any], float]] = {
    "ssimulacra2": ssimulacra2,
    "psnr": psnr,
    "ssim": ssim,
    "ms-ssim": ms_ssim,
}

#: smallest image side (pixels) each metric can score; metrics not listed score any size
MIN_SIDE: dict[str, int] = {"ssimulacra2": 8}


def too_small(metric: str, width: int, height: int) -> str:
    """Why ``metric`` cannot score a ``width`` x ``height`` image (a side under :data:`MIN_SIDE`), else ``""``.

    The batch optimizer skips such images, the CI gate does not check them and the Pillow hook gives them
    Pillow's plain save: a spacer GIF or a tracking pixel is not bad input.

    Examples
    --------
    >>> too_small("ssimulacra2", 1, 1)
    'ssimulacra2 cannot score a 1x1 image (it needs at least 8x8 pixels)'
    >>> too_small("psnr", 1, 1)
    ''
    """
    need = MIN_SIDE.get(metric.lower(), 1)
    if min(width, height) >= need:
        return ""
    return f"{metric} cannot score a {width}x{height} image (it needs at least {need}x{need} pixels)"


def get_metric(name: str) -> Callable[[Any, Any], float]:
    """Return the metric function called ``name`` (``ssimulacra2``, ``psnr``, ``ssim``, ``ms-ssim``)."""
    try:
        return METRICS[name.lower()]
    except KeyError:
        raise OptionError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def score(metric: str, reference: Any, distorted: Any) -> float:
    """Score ``distorted`` against ``reference`` with the metric called ``metric``.

    Parameters
    ----------
    metric : str
        ``"ssimulacra2"``, ``"psnr"``, ``"ssim"`` or ``"ms-ssim"`` (any case).
    reference, distorted : numpy.ndarray or PIL.Image.Image
        Same-size images (see the metric's own documentation).

    Returns
    -------
    float
        The metric's value; higher is better for all of them.

    Raises
    ------
    precodec.errors.OptionError
        Unknown metric name.
    precodec.errors.MetricInputError
        Images of different sizes or unsupported inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from precodec.metrics import score
    >>> a = np.zeros((16, 16, 3), np.uint8)
    >>> score("ssim", a, a)
    1.0
    """
    return float(get_metric(metric)(reference, distorted))
