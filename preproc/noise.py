"""Fast classical noise-level estimate, per image and per channel.

The estimate works on the finest diagonal Haar detail (``HH``) of each channel:
for white noise of standard deviation ``sigma`` that band has the same standard
deviation, while smooth image content barely reaches it.  Texture and edges do,
so the band is cut in 8x8-coefficient blocks (16x16 pixels) and only the
tenth of the blocks with the least structure is kept.  Structure is measured on
the low band ``LL`` (its gradients), which for white noise is independent of
``HH`` (the Haar transform is orthogonal): choosing blocks this way does not bias
the estimate downwards as choosing the quietest ``HH`` blocks would.  Blocks touching clipped
pixels (near 0 or 255) are skipped: clipping hides noise.

Cost: a few array passes over at most ``max_pixels`` (2 MP) of the image; on one core of the
2-core development machine about 12 ms for a 768x512 image and 100 ms for 24 megapixels.

Example
-------
>>> import numpy as np
>>> from precodec.preproc.noise import estimate_noise
>>> rng = np.random.default_rng(0)
>>> img = np.clip(128 + rng.normal(0, 10, (256, 256, 3)), 0, 255).astype(np.uint8)
>>> est = estimate_noise(img)
>>> 8.5 < est.sigma < 11.5
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError

__all__ = ["NoiseEstimate", "estimate_noise"]

_BLOCK = 8  # HH coefficients per block side (16x16 pixels)
_FRACTION = 0.10  # share of blocks (the least structured) the estimate uses
_MIN_BLOCKS = 16
_CLIP_LO, _CLIP_HI = 6, 249
# the RGB -> YCbCr (BT.601, full range) matrix used for the luma/chroma split
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


@dataclass(frozen=True)
class NoiseEstimate:
    """Noise standard deviation estimates in 8-bit units (0-255 scale).

    Attributes
    ----------
    rgb : tuple of float
        Per channel (R, G, B); a grey image repeats its one value.
    ycc : tuple of float
        Luma and the two chroma channels (BT.601 YCbCr).
    sigma : float
        Overall level: the root mean square of ``rgb``.
    blocks : int
        Number of 16x16 blocks the estimate used (few means unreliable).
    """

    rgb: tuple[float, float, float]
    ycc: tuple[float, float, float]
    sigma: float
    blocks: int = 0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        r = lambda v: round(float(v), 2)  # noqa: E731
        return {"sigma": r(self.sigma), "rgb": [r(v) for v in self.rgb], "ycc": [r(v) for v in self.ycc],
                "blocks": int(self.blocks)}


def _block_valid(valid: np.ndarray) -> np.ndarray | None:
    """Per 16x16 block (the grid :func:`_channel_sigma` uses): no clipped pixel in it."""
    bh, bw = valid.shape[0] // (2 * _BLOCK), valid.shape[1] // (2 * _BLOCK)
    if bh == 0 or bw == 0:
        return None
    v = valid[: bh * _BLOCK * 2, : bw * _BLOCK * 2].reshape(bh, _BLOCK * 2, bw, _BLOCK * 2).all(axis=(1, 3))
    return v.ravel()


def _channel_sigma(ch: np.ndarray, vblocks: np.ndarray | None) -> tuple[float, int]:
    h, w = ch.shape
    h2, w2 = (h // 2) * 2, (w // 2) * 2
    c = ch[:h2, :w2]
    a, b, cc, d = c[0::2, 0::2], c[0::2, 1::2], c[1::2, 0::2], c[1::2, 1::2]
    hh = (a - b - cc + d) * 0.5
    ll = (a + b + cc + d) * 0.5
    bh, bw = hh.shape[0] // _BLOCK, hh.shape[1] // _BLOCK
    if bh == 0 or bw == 0:
        return float(np.sqrt(np.mean(hh * hh))) if hh.size else 0.0, 0
    hh = hh[: bh * _BLOCK, : bw * _BLOCK]
    ll = ll[: bh * _BLOCK, : bw * _BLOCK]
    e = (hh * hh).reshape(bh, _BLOCK, bw, _BLOCK).mean(axis=(1, 3))
    # structure of each block from the low band (independent of the HH noise for white
    # noise, as the Haar transform is orthogonal): pick the least structured blocks
    g = np.zeros_like(ll)
    g[:, :-1] += np.abs(np.diff(ll, axis=1))
    g[:-1, :] += np.abs(np.diff(ll, axis=0))
    struct = g.reshape(bh, _BLOCK, bw, _BLOCK).mean(axis=(1, 3))
    e, struct = e.ravel(), struct.ravel()
    if vblocks is not None and vblocks.sum() >= max(4, 0.05 * vblocks.size):
        e, struct = e[vblocks], struct[vblocks]
    k = max(min(e.size, _MIN_BLOCKS), int(e.size * _FRACTION))
    sel = np.argpartition(struct, k - 1)[:k]
    return float(np.sqrt(np.mean(e[sel]))), int(e.size)


def estimate_noise(image: np.ndarray, *, max_pixels: int = 2_000_000) -> NoiseEstimate:
    """Estimate the noise level of an 8-bit image, per channel.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``.
    max_pixels : int
        Larger images are estimated on a centred crop of about this many
        pixels (noise is stationary enough; the cost stays bounded).

    Returns
    -------
    NoiseEstimate

    Examples
    --------
    >>> import numpy as np
    >>> estimate_noise(np.full((64, 64, 3), 100, np.uint8)).sigma
    0.0
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.dtype != np.uint8:
        raise OptionError(f"estimate_noise needs a uint8 (H, W) or (H, W, 3) array, got {a.dtype} {a.shape}")
    a = a[..., :3]
    h, w = a.shape[:2]
    if h * w > max_pixels:
        s = np.sqrt(max_pixels / (h * w))
        ch, cw = max(32, int(h * s)), max(32, int(w * s))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        a = a[y0:y0 + ch, x0:x0 + cw]
    # planes, not an interleaved array: the strided Haar sums and the per-pixel tests are several times faster
    planes = [np.ascontiguousarray(a[..., c]) for c in range(a.shape[2])]
    valid = (planes[0] > _CLIP_LO) & (planes[0] < _CLIP_HI)
    for p in planes[1:]:
        valid &= (p > _CLIP_LO) & (p < _CLIP_HI)
    vblocks = _block_valid(valid)
    f = [p.astype(np.float32) for p in planes]
    if a.shape[2] == 1:
        s, n = _channel_sigma(f[0], vblocks)
        return NoiseEstimate((s, s, s), (s, 0.0, 0.0), s, n)
    rgb = []
    n = 0
    for c in range(3):
        s, n = _channel_sigma(f[c], vblocks)
        rgb.append(s)
    m = _YCC.astype(np.float32)
    ycc = [_channel_sigma(m[j, 0] * f[0] + m[j, 1] * f[1] + m[j, 2] * f[2], vblocks)[0] for j in range(3)]
    sigma = float(np.sqrt(np.mean(np.square(rgb))))
    return NoiseEstimate(tuple(rgb), tuple(ycc), sigma, n)  # type: ignore[arg-type]
