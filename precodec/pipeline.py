"""The image pipeline behind :func:`precodec.optimize`.

decode and normalise -> analyse -> preprocess -> predict parameters -> encode
with the stock encoder -> verify the target -> guard -> bytes + decision record.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from . import config
from .errors import OptionError, UnsupportedModeError
from .intake import Intake, ImageSource, load_image
from .plugins import get_codec
from .record import DecisionRecord, Result
from .targets import Target

__all__ = ["optimize", "IMAGE_FORMATS", "DEFAULT_BACKEND"]

IMAGE_FORMATS = ("jpeg", "avif")
#: format -> backend used when none is named
DEFAULT_BACKEND = {"jpeg": "jpeg", "avif": "avif"}


def _prepare(intake: Intake, codec: Any) -> tuple[Any, np.ndarray]:
    """Image handed to the encoder, and the RGB/grey reference pixels for metrics."""
    im = intake.image
    if intake.has_alpha and not getattr(codec, "alpha", False):
        if not intake.alpha_is_opaque():
            raise UnsupportedModeError(
                f"image has transparency, which {codec.format.upper()} cannot store; use format='avif' "
                "or flatten it first"
            )
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    return im, intake.rgb()


def optimize(
    image: ImageSource,
    *,
    format: str = "jpeg",
    target: "str | Target | None" = "ssimulacra2:80",
    params: Mapping[str, Any] | None = None,
    backend: str | None = None,
    max_bytes: int | None = None,
    strip_metadata: bool = False,
    denoise: str = "off",
    source: str | None = None,
) -> Result:
    """Encode ``image`` with a stock encoder at the smallest settings reaching ``target``.

    Parameters
    ----------
    image : path, bytes, file object, PIL.Image.Image or numpy.ndarray
        The input; never modified.
    format : {"jpeg", "avif"}
        Output format.
    target : str or Target or None
        Quality to reach, measured against the original (``"ssimulacra2:80"``,
        ``"psnr:40"``, a preset such as ``"high"``).  None encodes with
        ``params`` as given.
    params : mapping, optional
        Encoder settings to fix (with ``target``, ``quality`` may not be fixed).
    backend : str, optional
        Encoder backend (``"jpeg"``, ``"mozjpeg"``, ``"jpegli"``, ``"avif"``).
    max_bytes : int, optional
        Size cap: the result is the best quality not larger than this.
    strip_metadata : bool
        Drop ICC/EXIF/XMP instead of carrying them.
    denoise : {"off", "auto", "clean"}
        Learned denoising before the encoder (see :mod:`precodec.preproc`).
    source : str, optional
        Label for the decision record (the CLI passes the path).

    Returns
    -------
    Result
        Bytes, format, parameters, measured quality and the decision record.

    Examples
    --------
    >>> import numpy as np, precodec
    >>> rng = np.random.default_rng(0)
    >>> img = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    >>> r = precodec.optimize(img, format="jpeg", target="psnr:30")
    >>> r.format, r.quality["psnr"] >= 30
    ('jpeg', True)
    """
    t0 = time.perf_counter()
    if format not in IMAGE_FORMATS:
        raise OptionError(f"format={format!r} is not one of {list(IMAGE_FORMATS)}")
    tgt = Target.parse(target) if target is not None else None
    fixed = dict(params or {})
    if tgt is not None and "quality" in fixed:
        raise OptionError("target and params['quality'] are mutually exclusive: give one or the other")
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise OptionError(f"max_bytes={max_bytes!r} must be a positive integer")
    name = backend or DEFAULT_BACKEND[format]
    codec = get_codec(name)
    if codec.format != format:
        raise OptionError(f"backend {name!r} writes {codec.format}, not {format}")
    intake = load_image(image, strip_metadata=strip_metadata)
    enc_image, ref = _prepare(intake, codec)
    rec = DecisionRecord(source=source, format=format, backend=name, target=str(tgt) if tgt else None,
                         bytes_in=intake.source_bytes, notes=list(intake.notes))
    rec.time_ms["intake"] = (time.perf_counter() - t0) * 1e3
    rec.learned = not config.learned_disabled()

    from .preproc import preprocess

    pre = preprocess(enc_image, ref, denoise=denoise, record=rec)
    enc_image, ref = pre.image, pre.reference
    rec.reference = pre.reference_name

    from .tuners.search import search_quality  # the tuner owns the search strategy

    out = search_quality(
        codec, enc_image, ref, target=tgt, fixed=fixed, max_bytes=max_bytes,
        metadata=intake.metadata, record=rec,
    )
    rec.time_ms["total"] = (time.perf_counter() - t0) * 1e3
    rec.bytes_out = len(out.data)
    rec.applied = dict(out.params)
    rec.measured = dict(out.quality)
    rec.versions = {"precodec": _version(), **codec.versions()}
    return Result(data=out.data, format=format, params=dict(out.params), quality=dict(out.quality), record=rec)


def _version() -> str:
    from ._version import __version__

    return __version__
