"""Content guard: is this a photograph, or something a photo denoiser must not touch?

Learned denoisers fail confidently on content unlike their training data: a
thin line in a schematic, a glyph edge in a screenshot, a lesion edge on a
scan.  :func:`classify` tells photographs from

- ``"grey"``: single-channel imagery (CT/X-ray slices, microscopy, scanned
  text, black-and-white images): the denoiser was trained on colour photos;
- ``"synthetic"``: screenshots, text, schematics, charts, line and pixel art
  (few distinct colours, large exactly flat areas, exact repeats);
- ``"medical"``: colour medical imagery recognisable without a model (fundus
  photographs: a dominant red-orange hue inside a black mask; stained histology:
  a pale background, no dark pixels, and only stain hues: blue-violet, pink,
  brown, never green or yellow);
- ``"photo"``: everything else.

It uses hand-made features only (no model), computed on a copy reduced to at
most about one megapixel by *nearest-neighbour* sampling, which keeps exact
colours and flat runs intact; cost on one core of the 2-core development machine: about 40 ms for a
768x512 image, 140 ms for 24 megapixels.  The thresholds were set on
the training photographs (every one must pass as ``photo`` with a margin) and on
what a screenshot or a schematic is, by construction; ``ood-dev`` is only used to
report how the guard does (see ``benchmarks/results/denoise.md``).

Example
-------
>>> import numpy as np
>>> from precodec.preproc.content import classify
>>> img = np.full((64, 64, 3), 255, np.uint8); img[20:22, :] = (200, 0, 0)  # a red line on white
>>> classify(img).label
'synthetic'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import OptionError

__all__ = ["ContentClass", "classify", "content_features", "LABELS"]

LABELS = ("photo", "grey", "synthetic", "medical")

# thresholds (see module docstring for how they were set)
GREY_CHROMA = 2.0          # mean |chroma| below this (8-bit units) -> single-channel
GREY_SHARE = 0.995         # ... or this share of pixels with chroma <= 3
FLAT_SYNTH = 0.45          # share of pixels exactly equal to both right and lower neighbours
TOP_COLOURS_SYNTH = 0.60   # share of pixels covered by the 16 most frequent colours
UNIQUE_SYNTH = 0.02        # distinct colours per pixel (on the reduced copy)
TOP_COLOURS_BLUR = 0.95    # share covered by the 16 most frequent colours after a blur and 32-level
                           # quantisation: survives noise added to a screenshot or a schematic
MASK_BLACK = 0.15          # share of near-black pixels for a fundus-like mask
RED_HUE = 0.85             # share of non-dark pixels with a red-orange hue (fundus)
# stained slide (histology: H&E, IHC): no dark pixels, a pale background, and coloured
# pixels only in stain hues (haematoxylin blue-violet, eosin pink, DAB brown), none green
# or yellow; measured on the blurred copy, so sensor noise (sigma 15 tested) changes
# nothing.  The ood-dev slide: luma_p1 75, pale 0.37, stain 1.00, colour 0.61.  No
# training or Kodak photo passes; the closest each fail one test: bsds_train_109034
# (luma_p1 50), bsds_test_157087 (stain 0.87), bsds_test_104010 (pale 0.003).  A false
# "medical" only costs the denoiser's gain; a missed slide risks structure, so the rule
# errs towards medical.
SLIDE_LUMA_P1 = 60.0       # 1st percentile of luma (8-bit) at least this (no shadows)
SLIDE_PALE = 0.20          # share of bright, unsaturated (background) pixels
SLIDE_STAIN = 0.97         # share of coloured pixels with a stain hue (outside 50-190 degrees)
SLIDE_COLOUR = 0.30        # share of coloured pixels (saturation and value above 30/255)


@dataclass(frozen=True)
class ContentClass:
    """Result of :func:`classify`.

    Attributes
    ----------
    label : str
        One of :data:`LABELS`.
    is_photo : bool
    reason : str
        Which feature decided, in words.
    features : dict
        The measured features (JSON-serialisable).
    """

    label: str
    reason: str
    features: dict[str, float] = field(default_factory=dict)

    @property
    def is_photo(self) -> bool:
        return self.label == "photo"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "reason": self.reason, "features": dict(self.features)}


def _reduce(a: np.ndarray, max_pixels: int) -> np.ndarray:
    h, w = a.shape[:2]
    step = int(np.ceil(np.sqrt(h * w / max_pixels))) if h * w > max_pixels else 1
    if step == 1:
        return a
    # keep 2x2 neighbourhoods intact (flatness is measured between neighbours): take
    # rows/columns in adjacent pairs
    ys = np.arange(0, h - 1, step)
    xs = np.arange(0, w - 1, step)
    ys = np.stack([ys, ys + 1], 1).ravel()
    xs = np.stack([xs, xs + 1], 1).ravel()
    return a[ys][:, xs]


def _top_sum(counts: np.ndarray, k: int) -> int:
    """Sum of the ``k`` largest values."""
    if counts.size <= k:
        return int(counts.sum())
    return int(np.partition(counts, counts.size - k)[-k:].sum())


def content_features(image: np.ndarray, *, max_pixels: int = 262_144) -> dict[str, float]:
    """Hand features used by :func:`classify` (all in [0, 1] or 8-bit units).

    Parameters
    ----------
    image : numpy.ndarray
        uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``.
    max_pixels : int
        Sets the sampling step of the nearest-neighbour reduced copy: every
        ``ceil(sqrt(pixels / max_pixels))``-th row and column is taken together
        with its neighbour (flatness is measured between neighbours), so the
        copy has up to about 4x ``max_pixels`` pixels (about 1 MP by default).

    Returns
    -------
    dict
        ``chroma_mean``, ``grey_share``, ``flat_share``, ``top16_share``,
        ``unique_per_px``, ``top16_share_blur``, ``black_share``, ``red_share``, ``saturation``,
        ``luma_p1``, ``pale_share``, ``stain_share``, ``colour_share``.

    Examples
    --------
    >>> import numpy as np
    >>> f = content_features(np.zeros((8, 8, 3), np.uint8))
    >>> f["flat_share"]
    1.0
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise OptionError(f"content_features needs a uint8 (H, W) or (H, W, 3) array, got {a.dtype} {a.shape}")
    a = _reduce(a, max_pixels)
    h, w = a.shape[:2]
    # per-channel planes: reductions over a length-3 last axis are slow in numpy
    r, g, b = (a[..., c].astype(np.int16) for c in range(3))
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    chroma = mx - mn
    packed = (r.astype(np.uint32) << 16) | (g.astype(np.uint32) << 8) | b.astype(np.uint32)
    if h > 1 and w > 1:
        eq_r = packed[:-1, :-1] == packed[:-1, 1:]
        eq_d = packed[:-1, :-1] == packed[1:, :-1]
        flat = float((eq_r & eq_d).mean())
    else:
        flat = 1.0
    # distinct colours and the 16 most frequent: run lengths of the sorted values
    srt = np.sort(packed, axis=None)
    starts = np.flatnonzero(np.concatenate(([True], srt[1:] != srt[:-1])))
    counts = np.diff(np.append(starts, srt.size))
    n = packed.size
    top16 = _top_sum(counts, 16)
    import cv2

    blur = cv2.GaussianBlur(a, (0, 0), 1.0)
    q = (blur >> 3).astype(np.uint32)
    qp = (q[..., 0] << 10) | (q[..., 1] << 5) | q[..., 2]
    qtop16 = _top_sum(np.bincount(qp.ravel(), minlength=1 << 15), 16)
    dark = mx < 20
    nondark = ~dark
    # red-orange hue: R clearly the largest, B the smallest, G between
    red = (r > g + 20) & (g >= b - 5) & nondark
    sat = np.where(mx > 0, chroma / np.maximum(mx, 1), 0)
    # stained-slide features on the blurred copy, so that sensor noise neither invents dark
    # pixels nor scatters the hues of the pale background
    hsv = cv2.cvtColor(blur, cv2.COLOR_RGB2HSV_FULL)
    hue = hsv[..., 0].astype(np.int32) * 360 // 256
    coloured = (hsv[..., 1] > 30) & (hsv[..., 2] > 30)
    pale = (hsv[..., 2] > 190) & (hsv[..., 1] < 40)
    stain = ((hue < 50) | (hue >= 190)) & coloured
    bl = blur.astype(np.int32)
    luma = (299 * bl[..., 0] + 587 * bl[..., 1] + 114 * bl[..., 2]) // 1000
    return {
        "chroma_mean": round(float(chroma.mean()), 3),
        "grey_share": round(float((chroma <= 3).mean()), 4),
        "flat_share": round(flat, 4),
        "top16_share": round(float(top16 / n), 4),
        "unique_per_px": round(float(len(counts) / n), 4),
        "top16_share_blur": round(float(qtop16 / n), 4),
        "black_share": round(float(dark.mean()), 4),
        "red_share": round(float(red.sum() / max(1, nondark.sum())), 4),
        "saturation": round(float(sat.mean()), 4),
        "luma_p1": round(float(np.percentile(luma, 1)), 1),
        "pale_share": round(float(pale.mean()), 4),
        "stain_share": round(float(stain.sum() / max(1, coloured.sum())), 4),
        "colour_share": round(float(coloured.mean()), 4),
    }


def classify(image: np.ndarray, *, max_pixels: int = 262_144) -> ContentClass:
    """Tell photographs from content a photo denoiser must not touch.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``.
    max_pixels : int
        Passed to :func:`content_features` (sets the size of the reduced copy).

    Returns
    -------
    ContentClass

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> photo = np.clip(rng.normal(120, 40, (128, 128, 3)), 0, 255).astype(np.uint8)
    >>> classify(photo).label
    'photo'
    >>> classify(photo[..., 0]).label
    'grey'
    """
    a = np.asarray(image)
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        f = content_features(a.reshape(a.shape[0], a.shape[1]), max_pixels=max_pixels)
        return ContentClass("grey", "single-channel image", f)
    f = content_features(a, max_pixels=max_pixels)
    if f["chroma_mean"] < GREY_CHROMA or f["grey_share"] > GREY_SHARE:
        return ContentClass("grey", f"colour image with grey content (mean chroma {f['chroma_mean']:.1f})", f)
    if f["flat_share"] > FLAT_SYNTH:
        return ContentClass("synthetic", f"{f['flat_share']:.0%} of pixels in exactly flat areas", f)
    if f["top16_share"] > TOP_COLOURS_SYNTH:
        return ContentClass("synthetic", f"16 colours cover {f['top16_share']:.0%} of the pixels", f)
    if f["unique_per_px"] < UNIQUE_SYNTH:
        return ContentClass("synthetic", f"only {f['unique_per_px']:.3f} distinct colours per pixel", f)
    if f["top16_share_blur"] > TOP_COLOURS_BLUR:
        return ContentClass("synthetic", f"16 colours cover {f['top16_share_blur']:.0%} of the smoothed image", f)
    if f["black_share"] > MASK_BLACK and f["red_share"] > RED_HUE:
        return ContentClass("medical", "red-orange field inside a black mask (fundus-like)", f)
    if (f["luma_p1"] >= SLIDE_LUMA_P1 and f["pale_share"] >= SLIDE_PALE
            and f["stain_share"] >= SLIDE_STAIN and f["colour_share"] >= SLIDE_COLOUR):
        return ContentClass("medical", "stain hues on a pale background, no dark pixels (stained slide)", f)
    return ContentClass("photo", "no synthetic, single-channel or medical signature", f)
