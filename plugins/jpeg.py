"""JPEG through Pillow (libjpeg-turbo).

Parameters: ``quality`` 1-100, ``subsampling`` "4:4:4" / "4:2:2" / "4:2:0",
``progressive`` and ``optimize`` (Huffman optimisation).  ICC, EXIF and XMP
are written when given as ``metadata``.

Example
-------
>>> import numpy as np
>>> from precodec.plugins.jpeg import JpegCodec
>>> data = JpegCodec().encode(np.zeros((8, 8, 3), np.uint8), {"quality": 90})
>>> data[:2]
b'\\xff\\xd8'
"""

from __future__ import annotations

import io
import threading
from typing import Any, Mapping

import PIL
from PIL import ImageFile, features

from ..errors import EncoderError
from ._image_util import SUBSAMPLING_TO_PIL, as_pil, metadata_kwargs
from .base import ImageCodec, Param, ParamSpace

__all__ = ["JpegCodec"]

#: Pillow sizes libjpeg's output buffer for ``optimize`` / ``progressive`` at 1 byte per pixel (2 at quality >= 95),
#: and libjpeg cannot grow it there ("Suspension not allowed here"): detailed images at quality 100 with 4:4:4 need
#: up to about 3 bytes per pixel (random noise: 2.9).  A failed save is retried with buffers of these many bytes per
#: pixel (Pillow's ``ImageFile.MAXBLOCK`` raised for the call; a concurrent save merely gets a larger buffer too).
_RETRY_BYTES_PER_PIXEL = (4, 16)
_MAXBLOCK_LOCK = threading.Lock()


def _pillow_save(im: Any, buf: io.BytesIO, kw: dict[str, Any]) -> None:
    try:
        im.save(buf, "JPEG", **kw)
        return
    except OSError as exc:
        if not (kw.get("optimize") or kw.get("progressive")):
            raise
        err = exc
    for per_pixel in _RETRY_BYTES_PER_PIXEL:
        buf.seek(0)
        buf.truncate()
        with _MAXBLOCK_LOCK:
            old = ImageFile.MAXBLOCK
            ImageFile.MAXBLOCK = max(old, per_pixel * im.width * im.height + 65536)
            try:
                im.save(buf, "JPEG", **kw)
                return
            except OSError as exc:
                err = exc
            finally:
                ImageFile.MAXBLOCK = old
    raise err


class JpegCodec(ImageCodec):
    """Baseline JPEG with Pillow's libjpeg(-turbo)."""

    name = "jpeg"
    format = "jpeg"
    extensions = (".jpg", ".jpeg")
    media_type = "image/jpeg"
    subsamplings = ("4:4:4", "4:2:2", "4:2:0")
    space = ParamSpace(
        (
            Param("quality", "int", 75, 1, 100, doc="libjpeg quality scale"),
            Param("subsampling", "choice", "4:2:0", choices=("4:4:4", "4:2:2", "4:2:0"), doc="chroma subsampling"),
            Param("progressive", "bool", False, doc="progressive scan script"),
            Param("optimize", "bool", True, doc="optimised Huffman tables"),
        )
    )

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, metadata: Any = None, **kwargs: Any) -> bytes:
        p = self.space.validate({**(params or {}), **kwargs})
        im = as_pil(data, alpha=False)
        buf = io.BytesIO()
        try:
            _pillow_save(im, buf, {"quality": p["quality"], "subsampling": SUBSAMPLING_TO_PIL[p["subsampling"]],
                            "progressive": p["progressive"], "optimize": p["optimize"], **metadata_kwargs(metadata)})
        except (OSError, ValueError) as exc:
            raise EncoderError(f"jpeg: {exc}") from None
        return buf.getvalue()

    def versions(self) -> dict[str, str]:
        out = {"pillow": PIL.__version__, "libjpeg": str(features.version("jpg"))}
        turbo = features.version("libjpeg_turbo")
        if turbo:
            out["libjpeg-turbo"] = str(turbo)
        return out
