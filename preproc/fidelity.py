"""Fidelity guard: prove the denoiser removed noise, not structure.

Two checks on the removed residual ``r = input - denoised`` (8-bit units):

1. **Low-pass agreement.**  Noise averages away under a Gaussian low-pass
   (std ``LOWPASS_SIGMA`` px); structure (a thin line, a colour shift, an edge)
   does not.  Per 16x16 block the mean absolute low-passed residual must stay
   below ``LOWPASS_ABS + LOWPASS_REL * sigma``; one block over the limit fails.
2. **The residual looks like noise of the estimated level.**  Its overall std
   must be within ``[RATIO_LO, RATIO_HI]`` times the estimated sigma, and no
   16x16 block may carry a residual std above ``BLOCK_HI`` times the estimated
   sigma (noise is roughly stationary; removed structure concentrates).

Thresholds were set from the statistics of white noise under these filters (the
low-passed noise has about a tenth of the noise std), with margin; they are
checked on hand-made failure cases (erased lines, colour casts, a broken model) in
``tests/test_preproc.py``.  With denoiser v2.0.0 the guard passed all 72 noisy
Kodak runs of ``benchmarks/bench_denoise.py`` (24 images x sigma 5/10/15) and all
held-out training images of ``training/denoiser/tune_strength.py`` at every
strength tried (0.6-1.5).

Example
-------
>>> import numpy as np
>>> from precodec.preproc.fidelity import check_fidelity
>>> rng = np.random.default_rng(0)
>>> clean = np.full((64, 64, 3), 128, np.uint8)
>>> noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
>>> check_fidelity(noisy, clean, sigma=8.0).passed
True
>>> broken = clean.copy(); broken[30:34] = 0  # a bar the "denoiser" invented
>>> check_fidelity(noisy, broken, sigma=8.0).passed
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FidelityReport", "check_fidelity"]

LOWPASS_SIGMA = 3.0
LOWPASS_ABS = 2.0
LOWPASS_REL = 0.25
RATIO_LO, RATIO_HI = 0.0, 1.6
BLOCK_HI = 3.5
_BLOCK = 16


@dataclass(frozen=True)
class FidelityReport:
    """Outcome of :func:`check_fidelity` (``passed`` and the measured values)."""

    passed: bool
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, **self.values}


def _blocks(a: np.ndarray, fn) -> np.ndarray:
    h, w = a.shape[:2]
    bh, bw = h // _BLOCK, w // _BLOCK
    if bh == 0 or bw == 0:
        return np.array([fn(a.reshape(-1))])
    a = a[: bh * _BLOCK, : bw * _BLOCK]
    a = a.reshape(bh, _BLOCK, bw, _BLOCK, -1).transpose(0, 2, 1, 3, 4).reshape(bh, bw, -1)
    return fn(a)


def check_fidelity(original: np.ndarray, denoised: np.ndarray, *, sigma: float) -> FidelityReport:
    """Check that ``denoised`` differs from ``original`` only by noise of level ``sigma``.

    Parameters
    ----------
    original, denoised : numpy.ndarray
        uint8 arrays of the same shape (H, W, 3) or (H, W).
    sigma : float
        Estimated noise std (8-bit units) of ``original``.

    Returns
    -------
    FidelityReport

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((32, 32, 3), np.uint8)
    >>> check_fidelity(a, a, sigma=0.0).passed
    True
    """
    import cv2

    o8, d8 = np.asarray(original), np.asarray(denoised)
    if o8.shape != d8.shape:
        raise ValueError(f"shapes differ: {o8.shape} vs {d8.shape}")
    s = max(float(sigma), 0.5)
    h = o8.shape[0]
    # horizontal stripes (block-aligned, with a blur margin): memory stays bounded on big images
    stripe, pad = 32 * _BLOCK, 2 * _BLOCK
    lp_max, blk_max, n, acc, acc2 = 0.0, 0.0, 0, 0.0, 0.0
    for y0 in range(0, h, stripe):
        y1 = min(h, y0 + stripe)
        ya, yb = max(0, y0 - pad), min(h, y1 + pad)
        r = o8[ya:yb].astype(np.float32) - d8[ya:yb].astype(np.float32)
        if r.ndim == 2:
            r = r[..., None]
        lp = cv2.GaussianBlur(r, (0, 0), LOWPASS_SIGMA, borderType=cv2.BORDER_REFLECT)
        if lp.ndim == 2:
            lp = lp[..., None]
        r, lp = r[y0 - ya:y1 - ya], lp[y0 - ya:y1 - ya]
        lp_max = max(lp_max, float(_blocks(np.abs(lp), lambda b: b.mean(axis=-1)).max()))
        blk_max = max(blk_max, float(_blocks(r, lambda b: b.std(axis=-1)).max()))
        n += r.size
        acc += float(r.sum(dtype=np.float64))
        acc2 += float(np.square(r, dtype=np.float32).sum(dtype=np.float64))
    lp_lim = LOWPASS_ABS + LOWPASS_REL * s
    mean = acc / max(n, 1)
    rstd = float(np.sqrt(max(acc2 / max(n, 1) - mean * mean, 0.0)))
    vals = {
        "lowpass_max": round(lp_max, 3), "lowpass_limit": round(lp_lim, 3),
        "residual_std": round(rstd, 3), "residual_ratio": round(rstd / s, 3),
        "block_max_ratio": round(blk_max / s, 3),
    }
    if lp_max > lp_lim:
        return FidelityReport(False, f"low-passed residual {lp_max:.2f} > {lp_lim:.2f}: structure or colour "
                                     "was changed, not only noise", vals)
    if not RATIO_LO <= rstd / s <= RATIO_HI:
        return FidelityReport(False, f"removed {rstd:.2f} std, {rstd / s:.2f}x the estimated noise "
                                     f"({s:.2f}): more than noise was removed", vals)
    if blk_max / s > BLOCK_HI:
        return FidelityReport(False, f"one block lost {blk_max:.2f} std ({blk_max / s:.1f}x the noise): "
                                     "local structure was removed", vals)
    return FidelityReport(True, "removed residual looks like noise of the estimated level", vals)
