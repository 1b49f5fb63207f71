"""precodec's opt-in learned image codec (a new bitstream: ``.pcl``).

A small variable-rate mean-scale hyperprior (Balle/Minnen line, trained in
``training/codec``), run with onnxruntime and entropy-coded with constriction
(``pip install precodec[learned]``).  Nothing turns it on by default: it is
used only when called here, through the ``"learned"`` backend of
:mod:`precodec.plugins`, or through the Pillow plugin registered by
:func:`precodec.plugins.learned.register_learned_plugin`.

Streams carry a format version, a model id from a frozen table and a prefix
of the model's SHA-256 (see :mod:`precodec.learned.container`); a stream from
another model or version fails with
:class:`~precodec.errors.BitstreamMismatchError` naming both.  Truncated or
corrupt streams fail with :class:`~precodec.errors.BitstreamError`.

Decoding never hinges on bit-exact floating point: the probability tables are
selected by integers computed with a fixed-point hyper-synthesis (exact on any
machine) and fixed integer frequency tables; see :mod:`precodec.learned._runtime`.

Example
-------
>>> import numpy as np
>>> from precodec import learned
>>> img = np.zeros((32, 48, 3), np.uint8)
>>> data = learned.encode(img, rate=2)
>>> learned.decode(data).size
(48, 32)
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import (
    BitstreamError,
    BitstreamMismatchError,
    OptionError,
    PrecodecError,
    TargetUnreachableError,
    UnsupportedModeError,
)
from . import container
from ._runtime import LearnedModel, _constriction, get_model

__all__ = [
    "DEFAULT_MODEL",
    "WRITE_MODELS",
    "model_for",
    "DEFAULT_RATE",
    "RATE_POINTS",
    "encode",
    "decode",
    "encode_to_target",
    "TargetResult",
    "available",
    "info",
    "stream_info",
]

#: models new streams can be written with, and the metric each was trained for.  Streams of
#: every model in ``container.MODEL_IDS`` that ships with this precodec still decode.
WRITE_MODELS: dict[str, str] = {
    "learned-hp48-v4": "ssimulacra2",  # v3 fine-tuned with MSE + a differentiable SSIMULACRA2 term
    "learned-hp48-v5": "psnr",  # v3 trained further for MSE alone
}
#: the model new streams are written with unless told otherwise (precodec judges quality with SSIMULACRA2)
DEFAULT_MODEL = "learned-hp48-v4"
RATE_POINTS = 6
DEFAULT_RATE = 3
_MODEL_ID = {v: k for k, v in container.MODEL_IDS.items()}


def model_for(metric: str | None = None, model: str | None = None) -> str:
    """The model to write with: ``model`` when given (checked), else the one trained for ``metric``.

    Examples
    --------
    >>> model_for("psnr")
    'learned-hp48-v5'
    >>> model_for("ssimulacra2") == DEFAULT_MODEL
    True
    """
    if model is not None:
        if model not in WRITE_MODELS:
            raise OptionError(f"model={model!r} is not one of {sorted(WRITE_MODELS)}")
        return model
    if metric is not None:
        for name, tuned in WRITE_MODELS.items():
            if tuned == metric:
                return name
    return DEFAULT_MODEL


def available() -> tuple[bool, str]:
    """``(True, "")`` when the learned codec can run here, else ``(False, reason)``."""
    try:
        get_model(DEFAULT_MODEL)
    except PrecodecError as exc:
        return False, str(exc)
    return True, ""


def info(model: str | None = None) -> dict[str, Any]:
    """A writing model's (default :data:`DEFAULT_MODEL`) name, id, digest, rate points and file sizes, and the
    models that write (for ``precodec info`` and the benchmark)."""
    from .. import models

    m = get_model(model_for(None, model))
    size = sum(models.manifest(f"{m.name}-{p}")["bytes"] for p in ("analysis", "synthesis",
                                                                   "hyper-analysis", "hyper-synthesis"))
    return {"model": m.name, "model_id": _MODEL_ID[m.name], "digest": m.digest.hex(), "rate_points": m.n_rates,
            "bytes": size, "format_version": container.FORMAT_VERSION,
            "tuned_for": WRITE_MODELS[m.name],
            "rdoq": f"alpha {_rdoq_tables()[m.name][0]:g}" if m.name in _rdoq_tables() else "none",
            "models": ", ".join(f"{n} ({t})" for n, t in WRITE_MODELS.items())}


def _to_array(image: Any) -> tuple[np.ndarray, str]:
    """HxWx3 uint8 RGB array (a copy) and the mode to restore."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8:
            raise OptionError(f"numpy images must be uint8, got {a.dtype}")
        if a.ndim == 2:
            return np.repeat(a[:, :, None], 3, axis=2), "L"
        if a.ndim == 3 and a.shape[2] == 3:
            return np.array(a, copy=True), "RGB"
        raise UnsupportedModeError(f"numpy image of shape {a.shape} is neither HxW nor HxWx3")
    if not isinstance(image, Image.Image):
        raise OptionError(f"expected a PIL image or numpy array, got {type(image).__name__!r}")
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        raise UnsupportedModeError(f"image mode {mode!r} has alpha, which the learned codec does not store")
    if mode == "L":
        a = np.asarray(image)
        return np.repeat(a[:, :, None], 3, axis=2), "L"
    if mode in ("RGB", "P", "CMYK", "YCbCr", "1"):
        return np.asarray(image.convert("RGB")), "RGB" if mode != "1" else "L"
    raise UnsupportedModeError(f"image mode {mode!r} is not supported by the learned codec (use L or RGB)")


TILE = 64  # latents per tile side (1024 pixels); larger images are run in overlapping tiles
_MARGIN = 4  # latents of context on each side (the transforms' reach is about 2 latents)


def _tiled(fn: Any, a: np.ndarray, *, up: bool) -> np.ndarray:
    """Run a transform (x16 up or /16 down) in overlapping tiles so memory stays bounded."""
    f = 16
    h, w = (a.shape[2], a.shape[3]) if up else (a.shape[2] // f, a.shape[3] // f)
    if h <= TILE and w <= TILE:
        return fn(a)
    out = None
    for i in range(0, h, TILE):
        for j in range(0, w, TILE):
            i0, i1 = max(0, i - _MARGIN), min(h, i + TILE + _MARGIN)
            j0, j1 = max(0, j - _MARGIN), min(w, j + TILE + _MARGIN)
            ni, nj = min(TILE, h - i), min(TILE, w - j)
            if up:
                t = fn(a[:, :, i0:i1, j0:j1])
                if out is None:
                    out = np.empty((1, t.shape[1], h * f, w * f), np.float32)
                oi, oj = (i - i0) * f, (j - j0) * f
                out[:, :, i * f : (i + ni) * f, j * f : (j + nj) * f] = t[:, :, oi : oi + ni * f, oj : oj + nj * f]
            else:
                t = fn(a[:, :, i0 * f : i1 * f, j0 * f : j1 * f])
                if out is None:
                    out = np.empty((1, t.shape[1], h, w), np.float32)
                out[:, :, i : i + ni, j : j + nj] = t[:, :, i - i0 : i - i0 + ni, j - j0 : j - j0 + nj]
    assert out is not None
    return out


def _check_rate(rate: Any, n: int) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise OptionError(f"rate must be an integer rate point 0..{n - 1}, got {rate!r}")
    if not 0 <= int(rate) < n:
        raise OptionError(f"rate={rate!r} is out of range [0, {n - 1}]")
    return int(rate)


@functools.lru_cache(maxsize=1)
def _rdoq_tables() -> dict[str, tuple[float, np.ndarray]]:
    """The models' RDOQ tables (``rdoq.json``, package data), read once: name -> (alpha, sensitivity)."""
    import json
    from importlib import resources

    models = json.loads(resources.files(__package__).joinpath("rdoq.json").read_text())["models"]
    return {name: (float(t["alpha"]), np.asarray(t["sensitivity"], np.float64)) for name, t in models.items()}


def _rdoq_weight(model: LearnedModel, rate: int) -> np.ndarray | None:
    """Per-channel weight of a squared latent error against bits for ``model`` at ``rate`` (None: no table).

    From ``rdoq.json`` (written by ``training/codec/rdoq.py``): the model's training Lagrangian
    ``lambda * 255^2 * MSE + bpp`` per latent symbol, with the squared pixel change a unit change of each
    latent channel causes (measured by finite differences through the synthesis on training crops) and a
    factor ``alpha`` chosen on training images.
    """
    t = _rdoq_tables().get(model.name)
    if t is None:
        return None
    alpha, sens = t
    if sens.shape != (model.n_rates, model.M):
        from ..errors import ModelError

        raise ModelError(f"rdoq.json: {model.name} table has shape {sens.shape}, the model needs "
                         f"{(model.n_rates, model.M)}")
    lam = float(model.codec["lambdas"][rate])
    return (alpha * lam * 255.0**2 / 3.0 * sens[rate])[None, :, None, None]


def _rdoq(res: np.ndarray, sym: np.ndarray, idx: np.ndarray, half: np.ndarray, ybits: np.ndarray,
          weight: np.ndarray) -> np.ndarray:
    """Rate-distortion optimised quantisation: move a symbol one step toward zero where that lowers
    ``weight * (res - sym)^2 + bits(sym)``.  Encoder-side only: the stream format is unchanged."""
    cand = sym - np.sign(sym)
    off = half[idx]
    c0 = weight * (res - sym) ** 2 + ybits[idx, sym + off]
    c1 = weight * (res - cand) ** 2 + ybits[idx, cand + off]
    return np.where((sym != 0) & (c1 < c0), cand, sym)


def _rdoq_applies(rgb: np.ndarray, mode: str, rdoq: bool, model: LearnedModel) -> bool:
    """RDOQ was fitted on photographs: on for content the guard calls a photograph, off for anything else.

    On ``ood-dev`` (``benchmarks/results/learned_rdoq_ood_dev_ungated.md``) RDOQ applied everywhere spent more
    bits at equal PSNR on 30 of 41 images with the PSNR model (up to 3.2%, a schematic; pixel art about 1%) and
    up to 2.4% more at equal SSIMULACRA2 on a CT slice with the SSIMULACRA2 model.
    """
    if not rdoq or mode == "L" or model.name not in _rdoq_tables():  # the guard's cost only where it decides
        return False
    from ..preproc.content import classify

    return classify(rgb).label == "photo"


def _encode_array(rgb: np.ndarray, mode: str, rate: int, model: LearnedModel,
                  rdoq: bool | np.ndarray = True) -> bytes:
    cs = _constriction()
    h, w = rgb.shape[:2]
    if not (1 <= w <= container.MAX_SIDE and 1 <= h <= container.MAX_SIDE):
        raise OptionError(f"image size {w}x{h} is outside 1..{container.MAX_SIDE} pixels per side")
    d = model.down
    H, W = -(-h // d) * d, -(-w // d) * d
    x = np.pad(rgb, ((0, H - h), (0, W - w), (0, 0)), mode="edge")
    x = x.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    y = _tiled(model.analysis, x, up=False) * model.gain(rate)
    zmax = int(model.codec["zmax"])
    z = np.clip(np.rint(model.hyper_analysis(y)), -zmax, zmax).astype(np.int64)
    mean_q, idx = model.hyper_synthesis(z)
    half = np.asarray(model.codec["y_half"], np.int64)
    res = y.astype(np.float64) - mean_q / 256.0
    lim = half[idx]
    sym = np.clip(np.rint(res).astype(np.int64), -lim, lim)
    weight = _rdoq_weight(model, rate) if rdoq is True else (None if rdoq is False else rdoq)
    if weight is not None:
        sym = _rdoq(res, sym, idx, half, model.ybits, weight)
    enc = cs.stream.queue.RangeEncoder()
    for c in range(z.shape[1]):
        enc.encode((z[0, c].ravel() + zmax).astype(np.int32), model.z_model(c))
    sflat, iflat = sym.ravel(), idx.ravel()
    order = np.argsort(iflat, kind="stable")
    counts = np.bincount(iflat, minlength=len(half))
    start = 0
    for k, n in enumerate(counts):
        if n:
            sel = order[start : start + n]
            enc.encode((sflat[sel] + half[k]).astype(np.int32), model.y_model(k))
            start += n
    payload = enc.get_compressed().astype("<u4").tobytes()
    head = container.Header(_MODEL_ID[model.name], model.digest, w, h, mode, rate)
    return container.pack(head, payload)


def encode(image: Any, *, rate: int | None = None, target: float | None = None, metric: str = "ssimulacra2",
           model: str | None = None, threads: int | None = None, rdoq: bool = True) -> bytes:
    """Encode an image with the learned codec.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        Mode ``L`` or ``RGB`` (``P``/``CMYK``/``YCbCr`` are converted to RGB;
        modes with alpha are refused).  Never modified.
    rate : int, optional
        Rate point, 0 (smallest) .. ``RATE_POINTS - 1`` (best quality); default
        :data:`DEFAULT_RATE`.  Mutually exclusive with ``target``.
    target : float, optional
        Smallest rate point whose decoded image reaches this ``metric`` score
        (see :func:`encode_to_target`).
    metric : {"ssimulacra2", "psnr"}
        Metric for ``target``.
    model : str, optional
        One of :data:`WRITE_MODELS`.  Default: with ``target``, the model
        trained for ``metric``; without, :data:`DEFAULT_MODEL`.
    threads : int, optional
        onnxruntime intra-op threads.
    rdoq : bool
        Rate-distortion optimised quantisation (default on, for photographs):
        the encoder moves a latent symbol one step toward zero where the bits
        saved outweigh the added distortion under the model's own training
        trade-off (``rdoq.json``, fitted by ``training/codec/rdoq.py`` on
        photographs).  Content the guard (:func:`precodec.preproc.content.classify`)
        does not call a photograph - grey images, screenshots, schematics,
        medical imagery - is rounded plainly, since RDOQ was measured worse
        on some of it.  Encoder-side only: streams decode the same way either
        way.  ``False`` rounds every latent to the nearest symbol.

    Returns
    -------
    bytes
        A ``.pcl`` stream.

    Raises
    ------
    OptionError
        Bad rate or model, both ``rate`` and ``target`` given.
    UnsupportedModeError
        Image with alpha or an unsupported mode.
    TargetUnreachableError
        ``target`` above what the best rate point reaches.

    Examples
    --------
    >>> import numpy as np
    >>> data = encode(np.full((16, 16, 3), 90, np.uint8), rate=0)
    >>> data[:4]
    b'\\x89PCL'
    """
    if rate is not None and target is not None:
        raise OptionError("give either rate= or target=, not both")
    if target is not None:
        return encode_to_target(image, target=target, metric=metric, model=model, threads=threads,
                                rdoq=rdoq).data
    m = get_model(model_for(None, model), threads=threads)
    r = _check_rate(DEFAULT_RATE if rate is None else rate, m.n_rates)
    rgb, mode = _to_array(image)
    return _encode_array(rgb, mode, r, m, rdoq=_rdoq_applies(rgb, mode, rdoq, m))


def stream_info(data: bytes) -> dict[str, Any]:
    """Header fields of a stream (no decoding); raises BitstreamError on a bad header.

    Examples
    --------
    >>> import numpy as np
    >>> stream_info(encode(np.zeros((8, 8), np.uint8), rate=1))["mode"]
    'L'
    """
    h = container.peek_header(data)
    return {"version": h.version, "model_id": h.model_id, "model": h.model_name, "digest": h.digest.hex(),
            "width": h.width, "height": h.height, "mode": h.mode, "rate": h.rate, "bytes": len(data)}


def _model_for(h: container.Header) -> str:
    """Name of the shipped model a stream needs (BitstreamMismatchError when it is not shipped)."""
    from .. import models

    name = container.MODEL_IDS.get(h.model_id)
    if name is None or f"{name}-synthesis" not in models.list_models():
        shipped = [n for n in container.MODEL_IDS.values() if f"{n}-synthesis" in models.list_models()]
        raise BitstreamMismatchError(
            f"stream was made with model id {h.model_id} ({h.model_name}), which this precodec does not ship "
            f"(it has {', '.join(shipped) or 'none'}); decode it with the precodec version that wrote it"
        )
    return name


def _check_model(h: container.Header, model: LearnedModel) -> None:
    mine = _MODEL_ID[model.name]
    if h.model_id != mine:
        raise BitstreamMismatchError(
            f"stream was made with model id {h.model_id} ({h.model_name}); this precodec has model id {mine} "
            f"({model.name})"
        )
    if h.digest != model.digest:
        raise BitstreamMismatchError(
            f"stream was made with {h.model_name} digest {h.digest.hex()}, the installed {model.name} has digest "
            f"{model.digest.hex()} (different weights)"
        )


def _decode_symbols(payload: bytes, h: container.Header, model: LearnedModel,
                    _hs_hook: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entropy-decode; returns (z, y_hat, symbols) with y_hat in the gained latent domain."""
    cs = _constriction()
    d = model.down
    H, W = -(-h.height // d) * d, -(-h.width // d) * d
    zh, zw = H // 64, W // 64
    N = int(model.codec["N"])
    zmax = int(model.codec["zmax"])
    words = np.frombuffer(payload, "<u4").astype(np.uint32)
    dec = cs.stream.queue.RangeDecoder(words)
    try:
        z = np.empty((1, N, zh, zw), np.int64)
        for c in range(N):
            z[0, c] = np.asarray(dec.decode(model.z_model(c), zh * zw), np.int64).reshape(zh, zw) - zmax
        raw = model.hyper_synthesis_raw(z)
        if _hs_hook is not None:  # tests: perturb the hyper-decoder's output
            raw = _hs_hook(raw)
        mean_q, idx = model.hyper_synthesis(z, raw)
        half = np.asarray(model.codec["y_half"], np.int64)
        iflat = idx.ravel()
        order = np.argsort(iflat, kind="stable")
        counts = np.bincount(iflat, minlength=len(half))
        sflat = np.empty(iflat.size, np.int64)
        start = 0
        for k, n in enumerate(counts):
            if n:
                sel = order[start : start + n]
                sflat[sel] = np.asarray(dec.decode(model.y_model(k), int(n)), np.int64) - half[k]
                start += n
    except (AssertionError, ValueError, RuntimeError, OverflowError) as exc:
        raise BitstreamError(f"stream is corrupt: entropy decoding failed ({exc})") from None
    sym = sflat.reshape(idx.shape)
    return z, sym + mean_q / 256.0, sym


def decode(data: bytes, *, threads: int | None = None, max_pixels: int | None = None) -> Any:
    """Decode a ``.pcl`` stream to a PIL image (mode ``L`` or ``RGB`` as encoded).

    Parameters
    ----------
    data : bytes
        A stream from :func:`encode`.
    threads : int, optional
        onnxruntime intra-op threads.
    max_pixels : int, optional
        Refuse larger images (default ``PIL.Image.MAX_IMAGE_PIXELS``).

    Raises
    ------
    BitstreamMismatchError
        Stream from another format version or model (the message names both).
    BitstreamError
        Truncated or corrupt stream.

    Examples
    --------
    >>> import numpy as np
    >>> decode(encode(np.zeros((8, 8), np.uint8), rate=1)).mode
    'L'
    """
    from PIL import Image

    h, payload = container.unpack(data)
    model = get_model(_model_for(h), threads=threads)
    _check_model(h, model)
    if h.rate >= model.n_rates:
        raise BitstreamError(f"bad rate point {h.rate} (model has {model.n_rates})")
    limit = max_pixels if max_pixels is not None else (Image.MAX_IMAGE_PIXELS or 2**31)
    if h.width * h.height > limit:
        raise BitstreamError(f"image of {h.width}x{h.height} pixels exceeds the limit of {limit}")
    _, y_hat, _ = _decode_symbols(payload, h, model)
    return _synthesise(y_hat, h, model)


def _synthesise(y_hat: np.ndarray, h: container.Header, model: LearnedModel) -> Any:
    from PIL import Image

    x = _tiled(model.synthesis, (y_hat * model.igain(h.rate)).astype(np.float32), up=True)
    x = np.clip(np.rint(x[0, :, : h.height, : h.width] * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    im = Image.fromarray(np.ascontiguousarray(x), "RGB")
    return im.convert("L") if h.mode == "L" else im


@dataclass
class TargetResult:
    """Outcome of :func:`encode_to_target`: the stream and how it was chosen."""

    data: bytes
    rate: int
    score: float
    metric: str
    target: float
    tried: dict[int, float] = field(default_factory=dict)
    seconds: float = 0.0
    model: str = DEFAULT_MODEL


def encode_to_target(image: Any, *, target: float, metric: str = "ssimulacra2", model: str | None = None,
                     threads: int | None = None, strict: bool = True, rdoq: bool = True) -> TargetResult:
    """Smallest rate point whose decoded image reaches ``target`` (binary search over rate points).

    Quality grows with the rate point, so a bisection needs about
    ``log2(RATE_POINTS) + 1`` encode/decode/score rounds.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
    target : float
        Required score (SSIMULACRA2 0-100 or PSNR dB).
    metric : {"ssimulacra2", "psnr"}
    model : str, optional
        One of :data:`WRITE_MODELS`; default the one trained for ``metric``.
    strict : bool
        When no rate point reaches the target: raise (True) or return the best.
    rdoq : bool
        As in :func:`encode`.

    Examples
    --------
    >>> import numpy as np
    >>> r = encode_to_target(np.full((16, 16, 3), 128, np.uint8), target=30.0, metric="psnr")
    >>> r.score >= 30.0
    True
    """
    from .. import metrics

    if metric not in ("ssimulacra2", "psnr"):
        raise OptionError(f"metric={metric!r} is not one of ['ssimulacra2', 'psnr']")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not np.isfinite(target):
        raise OptionError(f"target must be a finite number, got {target!r}")
    t0 = time.perf_counter()
    name = model_for(metric, model)
    m = get_model(name, threads=threads)
    rgb, mode = _to_array(image)
    ref = rgb[:, :, 0] if mode == "L" else rgb
    tried: dict[int, float] = {}
    streams: dict[int, bytes] = {}
    use_rdoq = _rdoq_applies(rgb, mode, rdoq, m)

    def trial(r: int) -> float:
        data = _encode_array(rgb, mode, r, m, rdoq=use_rdoq)
        dec = np.asarray(decode(data, threads=threads))
        s = float(metrics.score(metric, ref, dec))
        tried[r], streams[r] = s, data
        return s

    lo, hi = 0, m.n_rates - 1
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if trial(mid) >= target:
            best, hi = mid, mid - 1
        else:
            lo = mid + 1
    if best is None:
        top = m.n_rates - 1
        if strict:
            raise TargetUnreachableError(
                f"{metric} target {target} not reached by the learned codec: best rate point {top} gives "
                f"{tried[top]:.2f}"
            )
        best = top
    return TargetResult(streams[best], best, tried[best], metric, float(target), tried, time.perf_counter() - t0,
                        name)
