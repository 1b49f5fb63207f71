"""Pre-processing in front of the stock encoders: noise estimation, denoising, content guard.

:func:`preprocess` is the one entry point the pipeline calls.  It returns the
image to hand to the encoder and the reference the quality target is measured
against (the original, or the denoised image when the caller declared the
noise unwanted).

Modes (``denoise=``) and their contract:

``"off"`` (default)
    Nothing runs; the image and the reference are returned as given.
``"clean"``
    The caller declares the noise unwanted.  Photographs are denoised with a
    strength that follows the estimated noise level; the quality target is then
    measured against the **denoised** image (``reference_name="denoised"``,
    recorded).  Non-photographs are left alone unless forced with
    ``content="photo"``.
``"auto"``
    As ``"clean"``, but only for photographs whose estimated noise is at least
    :data:`AUTO_THRESHOLD`; everywhere else the inputs are returned untouched, so
    the encoded bytes are identical to ``"off"``.

Whenever the learned step would run, the fidelity guard
(:mod:`precodec.preproc.fidelity`) checks that only noise was removed; if not,
the plain path is taken (``record.fallback = True``) and the record says why.
The kill switch ``PRECODEC_DISABLE=1`` turns every mode into ``"off"``.

Example
-------
>>> import numpy as np
>>> from PIL import Image
>>> from precodec.preproc import preprocess
>>> a = np.full((32, 32, 3), 90, np.uint8)
>>> p = preprocess(Image.fromarray(a), a, denoise="auto")
>>> p.applied, p.reference_name
(False, 'original')
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OptionError

__all__ = ["DENOISE_MODES", "CONTENT_MODES", "AUTO_THRESHOLD", "Preprocessed", "preprocess"]

DENOISE_MODES = ("off", "auto", "clean")
#: ``content=``: "detect" runs the content guard, "photo" forces the image to be treated
#: as a photograph, "other" as a non-photograph (no learned step)
CONTENT_MODES = ("detect", "photo", "other")
#: ``auto`` denoises photographs whose estimated noise (8-bit std, RMS of R, G, B) is at
#: least this.  Set on the training photographs only: their estimates have median 0.85 and
#: 95th percentile 5.0 (the few above are grainy film scans); synthetic sensor noise of
#: sigma 10 estimates 6.7-11.1 (mean 9.7) on held-out training images.
AUTO_THRESHOLD = 7.0
#: ``clean`` skips images whose estimated noise is below this: nothing to remove
CLEAN_MIN_SIGMA = 1.0
_PROXY_QUALITY = 85
#: The noise level handed to the model is the estimate times a gain that depends on the
#: estimate: (sigma, gain) points, linear in between, constant outside.  Tuned with
#: ``training/denoiser/tune_strength.py`` on the held-out *training* images (never Kodak).
#: Denoiser 2.5.0 there (int8; BD-rate against plain JPEG at gains 0.8 / 0.9 / 1.0 / 1.1):
#: sigma 5 -5.8 / -6.2 / -6.2 / -6.0%, sigma 10 -21.9 / -23.2 / -23.9 / -23.9%, sigma 15 -41.9 /
#: -43.3 / -43.7 / -43.1%; the best quality reached peaks at 0.9 for every level.  So 1.0 from
#: sigma 10 up, and 0.9 at sigma 5, where 1.0 gains 0.03 points of BD-rate but removes more
#: texture (best quality 79.1 against 79.3).  The fidelity guard sent no image back to the plain
#: path at any of these gains.  (Up to 2.4.0, trained without the SSIMULACRA2 loss term, the
#: gains were 0.7 and 0.8: at 1.0 those models removed structure that the guard then caught.)
SIGMA_GAIN = ((5.0, 0.9), (10.0, 1.0))


def _sigma_gain(sigma: float) -> float:
    (s0, g0), (s1, g1) = SIGMA_GAIN
    return float(np.interp(sigma, [s0, s1], [g0, g1]))


@dataclass(frozen=True)
class Preprocessed:
    """What the encoder gets and what quality is measured against.

    Attributes
    ----------
    image : PIL.Image.Image
        Image to encode.
    reference : numpy.ndarray
        Pixels the target is measured against (RGB (H, W, 3) or grey (H, W)).
    reference_name : str
        ``"original"`` or ``"denoised"``.
    applied : bool
        True when a learned step changed the pixels.
    """

    image: Any
    reference: np.ndarray
    reference_name: str = "original"
    applied: bool = False


def _jpeg_size(a: np.ndarray) -> int:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=_PROXY_QUALITY)
    return buf.tell()


def preprocess(
    image: Any,
    reference: np.ndarray,
    *,
    denoise: str = "off",
    record: Any = None,
    content: str = "detect",
    strength: float = 1.0,
    threads: int | None = None,
    precision: str = "int8",
    fidelity_guard: bool = True,
) -> Preprocessed:
    """Apply the requested pre-processing; ``denoise="off"`` returns the inputs unchanged.

    Parameters
    ----------
    image : PIL.Image.Image
        The image about to be encoded (never modified).
    reference : numpy.ndarray
        Its pixels, uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``.
    denoise : {"off", "auto", "clean"}
        See the module docstring for the contract of each mode.
    record : DecisionRecord, optional
        Filled with the noise estimate, the content class, what ran and why.
    content : {"detect", "photo", "other"}
        Content guard: detect, or force the image to count as a photograph
        (learned step allowed) or not (never).
    strength : float
        Multiplier on the noise level fed to the denoiser (0 < s <= 3); 1 is the
        tuned default (the estimate times :data:`SIGMA_GAIN`'s gain).
    threads : int, optional
        onnxruntime threads for the denoiser.
    precision : {"int8", "fp32"}
        Denoiser build.  ``"int8"`` (the default) is the static int8 build:
        on Kodak with sensor noise it costs 0.3-0.7 % more bytes at equal
        quality than ``"fp32"`` and runs about 3x faster with 2 threads
        (``benchmarks/results/denoise.md``).
    fidelity_guard : bool
        Run the fidelity guard (on by default; turning it off is for experiments).

    Returns
    -------
    Preprocessed

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> rng = np.random.default_rng(1)
    >>> a = np.clip(rng.normal(120, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
    >>> preprocess(Image.fromarray(a), a, denoise="off").image.size
    (64, 64)
    """
    from .. import config

    if denoise not in DENOISE_MODES:
        raise OptionError(f"denoise={denoise!r} is not one of {list(DENOISE_MODES)}")
    if content not in CONTENT_MODES:
        raise OptionError(f"content={content!r} is not one of {list(CONTENT_MODES)}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 3:
        raise OptionError(f"strength={strength!r} must be a number in (0, 3]")
    info: dict[str, Any] = {"denoise": denoise, "ran": False}
    if record is not None:
        record.preprocessing.update(info)
    plain = Preprocessed(image, reference)
    if denoise == "off":
        return plain

    def done(why: str, *, fallback: bool = False) -> Preprocessed:
        info["reason"] = why
        if record is not None:
            record.preprocessing.update(info)
            record.notes.append(f"denoise={denoise}: {why}")
            if fallback:
                record.fallback = True
                record.reason = (record.reason + "; " if record.reason else "") + f"denoiser: {why}"
        return plain

    if config.learned_disabled():
        return done(f"kill switch {config.KILL_SWITCH_ENV} is set: no learned preprocessing")
    t0 = time.perf_counter()
    from .content import classify
    from .noise import estimate_noise

    ref = np.asarray(reference)
    mode = getattr(image, "mode", "RGB")
    if content == "detect":
        cls = classify(ref)
        label, why_cls = cls.label, cls.reason
        if record is not None:
            record.features["content"] = cls.to_dict()
    else:
        label, why_cls = ("photo" if content == "photo" else "forced-other"), f"content={content!r} given"
        if record is not None:
            record.features["content"] = {"label": label, "reason": why_cls}
    info["content"] = label
    est = estimate_noise(ref) if ref.dtype == np.uint8 else None
    if est is not None:
        info["noise"] = est.to_dict()
        if record is not None:
            record.features["noise"] = est.to_dict()
    if record is not None:
        record.time_ms["analyse"] = (time.perf_counter() - t0) * 1e3
    if label != "photo":
        return done(f"content guard: not a photograph ({label}: {why_cls})")
    if ref.dtype != np.uint8 or ref.ndim != 3 or ref.shape[2] != 3 or mode not in ("RGB", "RGBA"):
        return done(f"image mode {mode} is not 8-bit RGB: the denoiser is for colour photographs")
    assert est is not None
    if denoise == "auto" and est.sigma < AUTO_THRESHOLD:
        return done(f"estimated noise {est.sigma:.2f} < auto threshold {AUTO_THRESHOLD}")
    if est.sigma < CLEAN_MIN_SIGMA:
        return done(f"estimated noise {est.sigma:.2f} < {CLEAN_MIN_SIGMA}: nothing to remove")

    from .denoise import denoise_array, model_info
    from .fidelity import check_fidelity

    gain = _sigma_gain(est.sigma)
    sig = [s * gain * float(strength) for s in est.rgb]
    info.update({"strength": float(strength), "sigma_gain": round(gain, 3), "sigma_in": [round(s, 2) for s in sig],
                 "precision": precision, "threads": threads, **model_info(precision)})
    t1 = time.perf_counter()
    den = denoise_array(ref, sigma=sig, threads=threads, precision=precision)
    info["time_ms"] = round((time.perf_counter() - t1) * 1e3, 1)
    if fidelity_guard:
        # the noise actually present is the estimate; a strength above 1 asks for more removal
        rep = check_fidelity(ref, den, sigma=est.sigma * max(1.0, float(strength)))
        info["fidelity"] = rep.to_dict()
        if not rep.passed:
            return done(f"fidelity guard failed, plain path kept: {rep.reason}", fallback=True)
    try:
        plain_b, den_b = _jpeg_size(ref), _jpeg_size(den)
        info["bytes_saved_proxy"] = {"jpeg_quality": _PROXY_QUALITY, "plain": plain_b, "denoised": den_b,
                                     "saved": plain_b - den_b}
    except Exception:  # pragma: no cover - a proxy only
        pass
    from PIL import Image

    out = Image.fromarray(den, "RGB")
    if mode == "RGBA":
        out.putalpha(image.getchannel("A"))
    out.info = dict(getattr(image, "info", {}) or {})
    info["ran"] = True
    info["reference"] = "denoised"
    info["reason"] = (f"photograph with estimated noise {est.sigma:.2f}; denoised at strength {strength}; the "
                      "quality target is measured against the denoised image")
    if record is not None:
        record.preprocessing.update(info)
        record.notes.append(f"denoise={denoise}: ran ({info['reason']})")
        record.time_ms["preprocess"] = (time.perf_counter() - t0) * 1e3
    return Preprocessed(out, den, "denoised", True)
