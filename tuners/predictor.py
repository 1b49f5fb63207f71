"""The learned parameter predictor (onnxruntime only; never imports torch).

One small MLP per format (``precodec/models/predictor-<format>.onnx``, SHA-256
pinned by its manifest) maps :func:`~precodec.tuners.features.image_features`
to whole curves: SSIMULACRA2 versus quality for every configuration with its
own pixels, and bits per pixel versus quality for every configuration
(:mod:`precodec.tuners.space`).  One model thus serves every target; the
tuner reads off, per configuration, the lowest quality predicted to reach the
target and its predicted size, and verifies by encoding.

The manifest also holds the spread of the training features; an image with
features far outside it is *out of distribution* and the tuner falls back to
search (:func:`out_of_distribution`).

Example
-------
>>> import numpy as np
>>> from precodec.tuners.features import image_features
>>> rng = np.random.default_rng(0)
>>> img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
>>> curves = predict(image_features(img), format="jpeg", pixels=64 * 64)
>>> 0 < curves["jpeg:420"].quality_for(70) <= 100
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from .space import BYTES_CONFIGS, CONFIGS, GRIDS, SCORE_CONFIGS

__all__ = ["Curve", "model_name", "available", "predict", "curves_from_outputs", "out_of_distribution", "model_info"]

#: a feature this many training standard deviations beyond the training 0.5-99.5 % range counts as outside
OOD_STD = 1.0
#: this many features outside makes the image out of distribution
OOD_COUNT = 3


def model_name(format: str) -> str:
    return f"predictor-{format}"


def available(format: str) -> bool:
    """True when a predictor for ``format`` is shipped."""
    from .. import models

    return model_name(format) in models.list_models()


@functools.lru_cache(maxsize=None)
def model_info(format: str) -> dict[str, Any]:
    """The manifest of the predictor for ``format``."""
    from .. import models

    return models.manifest(model_name(format))


@dataclass
class Curve:
    """Predicted score and size of one configuration as functions of quality.

    ``quality`` is the grid; :meth:`score_at` / :meth:`bytes_at` interpolate
    (linearly; log-linearly for bytes) and extrapolate the end segments.
    ``offset`` shifts the score curve (set from a measurement).
    """

    config: str
    quality: np.ndarray
    scores: np.ndarray
    nbytes: np.ndarray
    offset: float = 0.0

    def score_at(self, q: float) -> float:
        return float(_interp(q, self.quality, self.scores)) + self.offset

    def bytes_at(self, q: float) -> float:
        return float(np.exp(_interp(q, self.quality, np.log(self.nbytes))))

    def quality_for(self, target: float, *, low: int = 1, high: int = 100) -> int:
        """Lowest integer quality in [low, high] predicted to reach ``target`` (``high`` + 1 if none)."""
        qs = np.arange(low, high + 1)
        s = _interp(qs.astype(np.float64), self.quality, self.scores) + self.offset
        ok = np.flatnonzero(s >= target)
        return int(qs[ok[0]]) if ok.size else high + 1


def _interp(q: Any, xs: np.ndarray, ys: np.ndarray) -> Any:
    q = np.asarray(q, np.float64)
    y = np.interp(q, xs, ys)
    lo_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    hi_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    y = np.where(q < xs[0], ys[0] + (q - xs[0]) * lo_slope, y)
    y = np.where(q > xs[-1], ys[-1] + (q - xs[-1]) * hi_slope, y)
    return y


def predict(features: np.ndarray, *, format: str, pixels: int) -> dict[str, Curve]:
    """Predicted curves of every configuration of ``format`` for one image.

    Parameters
    ----------
    features : numpy.ndarray
        :func:`~precodec.tuners.features.image_features` of the image.
    format : str
        ``"jpeg"`` or ``"avif"``.
    pixels : int
        Width times height (turns bits per pixel into bytes).

    Returns
    -------
    dict
        Configuration name -> :class:`Curve`.
    """
    from .. import models

    if format not in GRIDS:
        raise ModelError(f"no predictor for format {format!r}")
    sess = models.load(model_name(format), threads=1)
    x = np.asarray(features, np.float32).reshape(1, -1)
    want = sess.get_inputs()[0].shape[-1]
    if isinstance(want, int) and want != x.shape[1]:
        raise ModelError(f"{model_name(format)} expects {want} features, got {x.shape[1]}: model and "
                         "precodec.tuners.features are out of step; reinstall precodec")
    try:
        scores, log_bpp = sess.run(None, {"features": x})
    except Exception as exc:  # onnxruntime raises its own types
        raise ModelError(f"{model_name(format)} failed: {exc}") from None
    return curves_from_outputs(scores[0], log_bpp[0], format=format, pixels=pixels)


def curves_from_outputs(scores: np.ndarray, log_bpp: np.ndarray, *, format: str, pixels: int) -> dict[str, Curve]:
    """:class:`Curve` objects from one image's model outputs (``scores``: configs x grid, ``log_bpp`` likewise)."""
    grid = np.asarray(GRIDS[format], np.float64)
    s_by = {c: np.maximum.accumulate(np.asarray(scores[k], np.float64)) for k, c in enumerate(SCORE_CONFIGS[format])}
    out = {}
    for k, c in enumerate(BYTES_CONFIGS[format]):
        nbytes = np.exp(np.asarray(log_bpp[k], np.float64)) * pixels / 8
        out[c] = Curve(c, grid, s_by[CONFIGS[c].score_name], nbytes)
    return out


def out_of_distribution(features: np.ndarray, *, format: str) -> list[str]:
    """Names of the features far outside the training range (empty list: in distribution).

    The image counts as out of distribution when :data:`OOD_COUNT` or more
    features lie more than :data:`OOD_STD` training standard deviations
    beyond the 0.5-99.5 % range of the training features.
    """
    ood = model_info(format).get("ood")
    if not ood:
        return []
    f = np.asarray(features, np.float64)
    lo, hi, sd = (np.asarray(ood[k], np.float64) for k in ("p005", "p995", "std"))
    bad = (f < lo - OOD_STD * sd) | (f > hi + OOD_STD * sd)
    names = [n for n, b in zip(ood["names"], bad) if b]
    return names if len(names) >= OOD_COUNT else []
