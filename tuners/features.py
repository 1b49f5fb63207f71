"""Cheap image features for the parameter predictor.

What drives a JPEG/AVIF encoder's rate and a perceptual metric's score is
local detail at the 8x8-block scale, chroma detail (which subsampling throws
away) and noise.  The features measure exactly that, on a fixed-size sample:
at most :data:`MAX_BLOCKS` 16x16 macroblocks drawn (seeded) from the
full-resolution image, plus a few global statistics on a copy downscaled to
at most 256 px.  Cost: about 10 ms whatever the image size on one core of the
2-core development machine (half of one SSIMULACRA2 run on a 768x512 image).

Feature list (order frozen with the model, see :data:`FEATURE_NAMES`):
luma DCT energy in four frequency bands, simulated JPEG
quantisation of the luma blocks with the standard table at qualities 50, 75,
90 and 96 (share of non-zero AC coefficients and log error), block activity
(share of flat blocks, mean block deviation), chroma DCT energy, simulated
chroma quantisation, the error 4:2:0 subsampling alone makes, chroma spread,
global luma level and contrast, saturation, a noise estimate (Immerkaer),
edge density, colour-count ratio and the share of pixels equal to their
neighbour (synthetic content).

Example
-------
>>> import numpy as np
>>> f = image_features(np.zeros((32, 32, 3), np.uint8))
>>> f.shape == (len(FEATURE_NAMES),) and f.dtype == np.float32
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["FEATURE_NAMES", "MAX_BLOCKS", "image_features"]

MAX_BLOCKS = 384
_QS = (50, 75, 90, 96)

FEATURE_NAMES: tuple[str, ...] = (
    "y_band1", "y_band2", "y_band3", "y_band4",
    *[f"y_nz_q{q}" for q in _QS], *[f"y_lmse_q{q}" for q in _QS],
    "y_flat1", "y_flat4", "y_logstd",
    "cb_low", "cb_high", "cr_low", "cr_high",
    "c_nz_q75", "c_nz_q90",
    "cb_sub_lmse", "cr_sub_lmse",
    "cb_logstd", "cr_logstd",
    "luma_mean", "luma_std", "saturation", "noise", "edges", "colours", "equal_neighbour",
)

_LUMA_Q = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float32).reshape(8, 8)
_CHROMA_Q = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.float32).reshape(8, 8)


def _dct_matrix() -> np.ndarray:
    d = np.zeros((8, 8), np.float64)
    for k in range(8):
        a = math.sqrt(1 / 8) if k == 0 else math.sqrt(2 / 8)
        for n in range(8):
            d[k, n] = a * math.cos(math.pi * (2 * n + 1) * k / 16)
    return d.astype(np.float32)


_D = _dct_matrix()
_UV = np.add.outer(np.arange(8), np.arange(8))
_BANDS = [(_UV >= lo) & (_UV <= hi) for lo, hi in ((1, 2), (3, 4), (5, 7), (8, 14))]
_AC = _UV > 0


def _qtable(base: np.ndarray, q: int) -> np.ndarray:
    s = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((base * s + 50) / 100), 1, 255)


def _dct(blocks: np.ndarray) -> np.ndarray:
    return np.matmul(np.matmul(_D, blocks), _D.T)


def _as_rgb(image: Any) -> np.ndarray:
    if hasattr(image, "mode"):  # PIL
        im = image
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            if im.mode == "RGBA":
                im = im.convert("RGB")
        arr = np.asarray(im)
    else:
        arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim == 3 and arr.shape[2] == 2:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8:
        arr = (arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 1.0)
               * (255 if arr.dtype == np.uint16 else 1)).clip(0, 255).astype(np.uint8)
    return arr


def _ycc(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], -1)


def _macroblocks(arr: np.ndarray) -> np.ndarray:
    """Seeded sample of 16x16 macroblocks, (N, 16, 16, C) float32 YCbCr (C=1 for grey)."""
    h, w = arr.shape[:2]
    if h < 16 or w < 16:
        pad = ((0, max(0, 16 - h)), (0, max(0, 16 - w))) + (((0, 0),) if arr.ndim == 3 else ())
        arr = np.pad(arr, pad, mode="edge")
        h, w = arr.shape[:2]
    by, bx = h // 16, w // 16
    idx = np.arange(by * bx)
    if idx.size > MAX_BLOCKS:
        idx = np.sort(np.random.default_rng(0).choice(idx.size, MAX_BLOCKS, replace=False))
    # the block grid as a view (by, 16, bx, 16[, 3]); indexing block row and column together gathers
    # (N, 16, 16[, 3]) in one copy
    grid = arr[:by * 16, :bx * 16].reshape((by, 16, bx, 16) + arr.shape[2:])
    mb = grid[idx // bx, :, idx % bx]
    if mb.ndim == 3:
        return mb.astype(np.float32)[..., None]
    return _ycc(mb)


def image_features(image: Any) -> np.ndarray:
    """The predictor's input features of ``image`` (RGB/grey array or PIL image).

    Parameters
    ----------
    image : numpy.ndarray or PIL.Image.Image
        ``HxW`` or ``HxWx3`` uint8 (alpha ignored), or a PIL image.

    Returns
    -------
    numpy.ndarray
        float32 vector in the order of :data:`FEATURE_NAMES`.
    """
    arr = _as_rgb(image)
    h, w = arr.shape[:2]
    mb = _macroblocks(arr)
    n = mb.shape[0]
    f: list[float] = []  # image size is deliberately not a feature: training images are small
    y = mb[..., 0].reshape(n, 2, 8, 2, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 8, 8) - 128.0
    cy = _dct(y)
    ay = np.abs(cy)
    mean_ay = ay.mean(0)
    f += [math.log1p(float(mean_ay[m].mean())) for m in _BANDS]
    nz, lm = [], []
    for q in _QS:
        t = _qtable(_LUMA_Q, q)
        r = np.round(cy / t)
        nz.append(float((r[:, _AC] != 0).mean()))
        lm.append(math.log(float(((r * t - cy) ** 2).mean()) + 1e-3))
    f += nz + lm
    bstd = y.reshape(-1, 64).std(1)
    f += [float((bstd < 1).mean()), float((bstd < 4).mean()), math.log1p(float(bstd.mean()))]
    if mb.shape[-1] == 3:
        chans = []
        sub_l, stds = [], []
        nzc = {75: [], 90: []}
        for c in (1, 2):
            ch = np.ascontiguousarray(mb[..., c])
            sub = ch.reshape(n, 8, 2, 8, 2).mean((2, 4))
            up = np.repeat(np.repeat(sub, 2, 1), 2, 2)
            sub_l.append(math.log(float(((ch - up) ** 2).mean()) + 1e-3))
            stds.append(math.log1p(float(ch.std())))
            cc = _dct(sub)
            ac = np.abs(cc).mean(0)
            chans += [math.log1p(float(ac[_BANDS[0]].mean())),
                      math.log1p(float(ac[_BANDS[1] | _BANDS[2] | _BANDS[3]].mean()))]
            for q in nzc:
                nzc[q].append(float((np.round(cc / _qtable(_CHROMA_Q, q))[:, _AC] != 0).mean()))
        f += chans + [float(np.mean(nzc[75])), float(np.mean(nzc[90]))] + sub_l + stds
        sat = float(np.sqrt(mb[..., 1] ** 2 + mb[..., 2] ** 2).mean() / 128.0)
    else:
        f += [0.0] * 4 + [0.0, 0.0] + [math.log(1e-3)] * 2 + [0.0, 0.0]
        sat = 0.0
    yy = mb[..., 0]
    lap = yy[:, :-2, :-2] - 2 * yy[:, :-2, 1:-1] + yy[:, :-2, 2:] - 2 * yy[:, 1:-1, :-2] + 4 * yy[:, 1:-1, 1:-1] \
        - 2 * yy[:, 1:-1, 2:] + yy[:, 2:, :-2] - 2 * yy[:, 2:, 1:-1] + yy[:, 2:, 2:]
    sig = np.abs(lap).mean((1, 2)) * math.sqrt(math.pi / 2) / 6
    noise = math.log1p(float(np.percentile(sig, 10)))
    gx = np.abs(np.diff(yy, axis=2)).mean()
    gy = np.abs(np.diff(yy, axis=1)).mean()
    edges = float(((np.abs(np.diff(yy, axis=2)) > 20).mean() + (np.abs(np.diff(yy, axis=1)) > 20).mean()) / 2)
    del gx, gy
    # global statistics on a small copy
    step = max(1, int(math.ceil(max(h, w) / 256)))
    small = arr[::step, ::step]
    flat = small.reshape(-1, small.shape[2]) if small.ndim == 3 else small.reshape(-1, 1)
    packed = flat[:, 0].astype(np.uint32)  # at most 3 x 8 bits
    for k in range(1, flat.shape[1]):
        packed = packed * 256 + flat[:, k]
    # distinct colours: the changes in the sorted values (np.unique's count without its extra passes)
    srt = np.sort(packed)
    colours = (int(np.count_nonzero(srt[1:] != srt[:-1])) + int(srt.size > 0)) / max(1, packed.size)
    # a pixel equal to its right neighbour in every channel (a - b == 0 exactly when a == b)
    eqn = float(np.all(mb[:, :, 1:] == mb[:, :, :-1], axis=-1).mean())
    gl = yy.mean() / 255.0
    gs = yy.std() / 128.0
    f += [float(gl), float(gs), sat, noise, edges, float(colours), eqn]
    out = np.asarray(f, np.float32)
    assert out.shape == (len(FEATURE_NAMES),), (out.shape, len(FEATURE_NAMES))
    return out
