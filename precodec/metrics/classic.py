"""Classic full-reference metrics: PSNR, SSIM and MS-SSIM (numpy + OpenCV).

Inputs are the same as for :func:`precodec.metrics.ssimulacra2.ssimulacra2`:
``uint8``/``uint16`` arrays (``HxW`` grey, ``HxWx3`` RGB, ``HxWx2``/``HxWx4``
with alpha) or PIL images, same size; they are never modified.  Images with
an alpha channel are composited over mid-grey (50 %) on the encoded values
before measuring, so invisible pixels do not count.

Conventions (stated because tools differ):

* **PSNR** is computed on R, G and B together (one MSE over all samples) with
  the nominal peak (255 for 8-bit, 65535 for 16-bit).  Identical images give
  ``float('inf')``.
* **SSIM** (Wang, Bovik, Sheikh and Simoncelli, 2004) is computed on BT.601
  luma ``Y' = 0.299 R' + 0.587 G' + 0.114 B'`` of the gamma-encoded values,
  with an 11x11 Gaussian window (sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``,
  ``L`` = peak, averaged over the "valid" region (windows fully inside the
  image), like the authors' ``ssim_index.m``; no automatic downsampling.
  Images under 11 pixels in a dimension use a reflected border instead.
* **MS-SSIM** (Wang, Simoncelli and Bovik, 2003) uses 5 scales with the
  standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average
  downsampling, the contrast-structure term at scales 1-4 and full SSIM at
  scale 5, on the same luma.  Negative terms are clamped at 0 before the
  weighted product (as in common implementations), so the result is in 0..1.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ..errors import MetricInputError
from ._color import check_same_size, downsample2x, luma601, to_rgb_alpha

__all__ = ["psnr", "ssim", "ms_ssim", "MS_SSIM_WEIGHTS"]

#: weights of the five MS-SSIM scales, finest first (Wang et al. 2003)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

_WIN = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def _prepared(reference: Any, distorted: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Both images as float32 ``HxWx3`` arrays on the 0..peak scale (alpha composited)."""
    check_same_size(reference, distorted)
    out = []
    peaks = []
    for img, name in ((reference, "reference"), (distorted, "distorted")):
        rgb, alpha, peak = to_rgb_alpha(img, name=name)
        f = rgb.astype(np.float32)
        if alpha is not None:
            a = alpha.astype(np.float32)[:, :, None] / np.float32(peak)
            f = f * a + np.float32(0.5 * peak) * (1.0 - a)
        out.append(f)
        peaks.append(peak)
    if peaks[0] != peaks[1]:
        raise MetricInputError(
            f"bit depth mismatch: reference peak {peaks[0]}, distorted peak {peaks[1]} (use the same dtype)"
        )
    return out[0], out[1], peaks[0]


def psnr(reference: Any, distorted: Any) -> float:
    """Peak signal-to-noise ratio in dB over the R, G and B samples.

    Parameters
    ----------
    reference, distorted : numpy.ndarray or PIL.Image.Image
        Same-size images (``uint8`` or ``uint16``; grey, RGB, or with alpha).

    Returns
    -------
    float
        ``10 log10(peak^2 / MSE)`` with peak 255 (8-bit) or 65535 (16-bit);
        ``inf`` for identical images.

    Raises
    ------
    precodec.errors.MetricInputError
        Different sizes or bit depths, or an unsupported input.

    Examples
    --------
    >>> import numpy as np
    >>> from precodec.metrics import psnr
    >>> a = np.zeros((8, 8, 3), np.uint8)
    >>> b = a.copy(); b[0, 0, 0] = 16
    >>> round(psnr(a, b), 2)
    46.88
    >>> psnr(a, a)
    inf
    """
    ref, dist, peak = _prepared(reference, distorted)
    diff = cv2.subtract(ref, dist)
    mse = sum(cv2.sumElems(cv2.multiply(diff, diff))[:3]) / diff.size
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _gauss(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (_WIN, _WIN), _SIGMA, borderType=cv2.BORDER_REFLECT)


def _ssim_terms(x: np.ndarray, y: np.ndarray, peak: int) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two float32 planes."""
    c1 = (_K1 * peak) ** 2
    c2 = (_K2 * peak) ** 2
    mu_x = _gauss(x)
    mu_y = _gauss(y)
    sxx = _gauss(x * x) - mu_x * mu_x
    syy = _gauss(y * y) - mu_y * mu_y
    sxy = _gauss(x * y) - mu_x * mu_y
    cs_map = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum_map = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    h, w = x.shape
    r = _WIN // 2
    if h >= _WIN and w >= _WIN:  # "valid" region: windows fully inside the image
        cs_map = cs_map[r : h - r, r : w - r]
        lum_map = lum_map[r : h - r, r : w - r]
    cs = float(cs_map.mean(dtype=np.float64))
    ssim_value = float((lum_map * cs_map).mean(dtype=np.float64))
    return ssim_value, cs


def ssim(reference: Any, distorted: Any) -> float:
    """Structural similarity (SSIM) on BT.601 luma, Gaussian 11x11 window, sigma 1.5.

    Parameters
    ----------
    reference, distorted : numpy.ndarray or PIL.Image.Image
        Same-size images (``uint8`` or ``uint16``; grey, RGB, or with alpha).

    Returns
    -------
    float
        Mean SSIM over the valid region; 1.0 for identical images.

    Raises
    ------
    precodec.errors.MetricInputError
        Different sizes or bit depths, or an unsupported input.

    Examples
    --------
    >>> import numpy as np
    >>> from precodec.metrics import ssim
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> ssim(a, a)
    1.0
    >>> ssim(a, a // 2) < 0.9
    True
    """
    ref, dist, peak = _prepared(reference, distorted)
    value, _ = _ssim_terms(luma601(ref), luma601(dist), peak)
    return value


def ms_ssim(reference: Any, distorted: Any) -> float:
    """Multi-scale SSIM (5 scales, standard weights) on BT.601 luma.

    Parameters
    ----------
    reference, distorted : numpy.ndarray or PIL.Image.Image
        Same-size images (``uint8`` or ``uint16``; grey, RGB, or with alpha).
        Any size works; below 176 pixels the coarse scales use reflected
        borders (see the module notes).

    Returns
    -------
    float
        MS-SSIM in 0..1; 1.0 for identical images.

    Raises
    ------
    precodec.errors.MetricInputError
        Different sizes or bit depths, or an unsupported input.

    Examples
    --------
    >>> import numpy as np
    >>> from precodec.metrics import ms_ssim
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    >>> ms_ssim(a, a)
    1.0
    """
    ref, dist, peak = _prepared(reference, distorted)
    x, y = luma601(ref), luma601(dist)
    result = 1.0
    last = len(MS_SSIM_WEIGHTS) - 1
    for i, weight in enumerate(MS_SSIM_WEIGHTS):
        value, cs = _ssim_terms(x, y, peak)
        term = value if i == last else cs
        result *= max(term, 0.0) ** weight
        if i != last:
            x, y = downsample2x(x), downsample2x(y)
    return float(result)
