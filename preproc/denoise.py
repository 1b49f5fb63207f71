"""Learned denoiser inference: onnxruntime, tiled with overlap, bounded memory.

The shipped model (``precodec/models/denoiser.onnx``, see its manifest) is a small
FFDNet-style residual U-Net: it works on the four half-resolution phases of the
RGB image (pixel unshuffle) and, for context, at quarter resolution, conditioned
on a per-channel noise level.  Large images are processed in tiles of ``tile``
pixels plus a ``margin`` of context on each side (larger than the network's
receptive radius, so tiling gives the same pixels as one pass, up to float
rounding).  With ``threads=n`` the tiles run on ``n`` workers of one thread each
(onnxruntime releases the GIL; on 2 cores this scales better than giving one
tile two intra-op threads: 1.8x against 1.4x, int8); an image smaller than ``n`` tiles
is first cut into up to ``n`` strips (none thinner than four margins).  At most ``n`` tiles' tensors are alive at a
time, so memory stays bounded whatever the image size.

Example
-------
>>> import numpy as np
>>> from precodec.preproc.denoise import denoise_array
>>> rng = np.random.default_rng(0)
>>> clean = np.full((64, 96, 3), 128, np.uint8)
>>> noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
>>> out = denoise_array(noisy, sigma=(10, 10, 10), threads=1)
>>> out.shape, out.dtype, bool(out.std() < 0.9 * noisy.std())
((64, 96, 3), dtype('uint8'), True)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..errors import ModelError, OptionError

__all__ = ["MODEL", "MODEL_INT8", "denoise_array", "model_info"]

MODEL = "denoiser"
MODEL_INT8 = "denoiser_int8"
PRECISIONS = ("fp32", "int8")
_MAX_SIGMA = 50.0  # the model was trained up to ~25; beyond, clamp (record says so)
_ALIGN = 4  # the network needs sizes (and tile offsets) that are multiples of 4
_SIGMA_SCALE = 25.0  # noise-map value = sigma (8-bit units) / 25 (training/denoiser/model.py)
_CORE_CHANNELS = 16  # the graph's input and output channels (layout "phases-16")
LAYOUT = "phases-16"


def model_info(precision: str = "int8") -> dict:
    """Name, version and SHA-256 of the model used for ``precision`` (for the decision record)."""
    from .. import models

    name = _model_name(precision)
    m = models.manifest(name)
    return {"model": name, "version": m["version"], "sha256": m["sha256"]}


def _model_name(precision: str) -> str:
    if precision not in PRECISIONS:
        raise OptionError(f"precision={precision!r} is not one of {list(PRECISIONS)}")
    return MODEL if precision == "fp32" else MODEL_INT8


def denoise_array(
    image: np.ndarray,
    *,
    sigma: Sequence[float],
    threads: int | None = None,
    precision: str = "int8",
    tile: int = 768,
    margin: int = 32,
) -> np.ndarray:
    """Denoise an 8-bit RGB image with the shipped model.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 ``(H, W, 3)``; not modified.
    sigma : sequence of 3 floats
        Noise standard deviation of R, G, B in 8-bit units (the strength).
    threads : int, optional
        Tiles run on this many workers of one onnxruntime thread each
        (default: the number of CPU cores, at most 4).  Each worker holds
        one tile's tensors: with the default tile, about 80 MiB more peak
        memory per worker for int8 and 150 MiB for fp32 (measured with
        denoiser 2.4.0, the same network as 2.5.0, on a 24-megapixel image:
        152/231 MiB int8, 253/405 MiB fp32 with 1/2 workers).
    precision : {"int8", "fp32"}
        Which build of the model to run (int8, the default: about 3x faster
        with 2 threads; denoiser 2.5.0: within 0.05 dB of fp32 on held-out crops).
    tile : int
        Tile side in pixels (a multiple of 4, >= 32); memory grows with its square.
    margin : int
        Context pixels around each tile (a multiple of 4; 32 covers the
        network's receptive radius, smaller values trade exactness at tile
        seams for speed).

    Returns
    -------
    numpy.ndarray
        uint8 ``(H, W, 3)``, a new array.

    Examples
    --------
    >>> import numpy as np
    >>> denoise_array(np.zeros((5, 7, 3), np.uint8), sigma=(0, 0, 0)).shape
    (5, 7, 3)
    """
    from .. import models

    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise OptionError(f"denoise_array needs a uint8 (H, W, 3) array, got {a.dtype} {a.shape}")
    if not isinstance(tile, int) or isinstance(tile, bool) or tile < 32 or tile % _ALIGN:
        raise OptionError(f"tile={tile!r} must be an integer >= 32 and a multiple of {_ALIGN}")
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0 or margin % _ALIGN:
        raise OptionError(f"margin={margin!r} must be a non-negative multiple of {_ALIGN}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise OptionError(f"threads={threads!r} must be a positive integer")
    sig = np.asarray(sigma, dtype=np.float32).reshape(-1)
    if sig.size == 1:
        sig = np.repeat(sig, 3)
    if sig.size != 3 or not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise OptionError(f"sigma={sigma!r} must be three non-negative numbers")
    sig = np.minimum(sig, _MAX_SIGMA)[None, :]
    workers = threads or min(4, os.cpu_count() or 1)
    name = _model_name(precision)
    layout = models.manifest(name).get("layout")
    if layout != LAYOUT:
        raise ModelError(f"model {name} has layout {layout!r}; this precodec needs {LAYOUT!r} "
                         "(model files and code are out of step: reinstall precodec)")
    sess = models.load(name, threads=1)
    h, w = a.shape[:2]
    # the network works on 2x2 phases and a quarter-resolution path: pad the sizes to
    # multiples of 4 by replicating the last rows/columns
    hp, wp = -(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN
    src = a if (hp, wp) == (h, w) else np.pad(a, ((0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    out = np.empty((hp, wp, 3), np.uint8)
    th = tw = tile
    if workers > 1 and -(-hp // th) * -(-wp // tw) < workers:
        # fewer tiles than workers: cut the longer side into strips, one per worker, but none thinner
        # than 4 margins (thinner strips would spend more on context than they save)
        least = max(_ALIGN, 4 * margin)
        if hp >= wp:
            th = min(th, max(least, -(-hp // (workers * _ALIGN)) * _ALIGN))
        else:
            tw = min(tw, max(least, -(-wp // (workers * _ALIGN)) * _ALIGN))
    jobs = [(y0, x0) for y0 in range(0, hp, th) for x0 in range(0, wp, tw)]

    # the graph works on the four 2x2 phases (layout "phases-16", see the manifest): channels 4c + 2i + j
    # hold colour c at row phase i and column phase j, then the noise map and one zero channel; it returns
    # the phases' noise.  The shuffles are done here, with the uint8 <-> float conversions
    smap = (sig[0] / _SIGMA_SCALE).astype(np.float32)

    def run_tile(job: tuple[int, int]) -> None:
        y0, x0 = job
        y1, x1 = min(hp, y0 + th), min(wp, x0 + tw)
        ya, yb = max(0, y0 - margin), min(hp, y1 + margin)
        xa, xb = max(0, x0 - margin), min(wp, x1 + margin)
        t = src[ya:yb, xa:xb]
        h2, w2 = (yb - ya) // 2, (xb - xa) // 2
        z = np.empty((1, _CORE_CHANNELS, h2, w2), np.float32)
        z[0, :12].reshape(3, 2, 2, h2, w2)[...] = t.reshape(h2, 2, w2, 2, 3).transpose(4, 1, 3, 0, 2)
        z[0, :12] *= 1.0 / 255.0
        z[0, 12:15] = smap[:, None, None]
        z[0, 15:] = 0.0
        noise = sess.run(None, {"z": z})[0][0, :12]
        del z
        # back to (H, W, 3) pixels: y = 255 * (x - noise) + 0.5, rounded down
        n = noise.reshape(3, 2, 2, h2, w2).transpose(3, 1, 4, 2, 0).reshape(2 * h2, 2 * w2, 3)
        sl = (slice(y0 - ya, y0 - ya + (y1 - y0)), slice(x0 - xa, x0 - xa + (x1 - x0)))
        y = n[sl] * -255.0
        y += t[sl]
        y += 0.5
        np.clip(y, 0, 255, out=y)
        out[y0:y1, x0:x1] = y.astype(np.uint8)

    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            run_tile(job)
    else:
        with ThreadPoolExecutor(min(workers, len(jobs)), thread_name_prefix="precodec-denoise") as ex:
            for _ in ex.map(run_tile, jobs):  # re-raises a worker's exception
                pass
    return out[:h, :w] if (hp, wp) != (h, w) else out
