"""jpegli (Google's JPEG encoder) through the optional ``pyjpegli`` package.

Output is ordinary JPEG. ``pyjpegli`` exposes quality only (4:2:0 chroma,
jpegli's adaptive quantisation); greyscale input is encoded as RGB.
Install with ``pip install precodec[anchors]``.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Mapping

import numpy as np

from ..errors import EncoderError
from ._image_util import as_pil, optional_module
from .base import ImageCodec, Param, ParamSpace

__all__ = ["JpegliCodec"]


def _lib() -> Any:
    return optional_module("pyjpegli", "jpegli")


class JpegliCodec(ImageCodec):
    """JPEG encoded by jpegli (decoded by any JPEG decoder)."""

    name = "jpegli"
    format = "jpeg"
    extensions = (".jpg", ".jpeg")
    media_type = "image/jpeg"
    subsamplings = ("4:2:0",)
    space = ParamSpace((Param("quality", "int", 75, 1, 100, doc="jpegli quality (libjpeg-like scale)"),))

    @classmethod
    def require(cls) -> None:
        _lib()

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, metadata: Any = None, **kwargs: Any) -> bytes:
        p = self.space.validate({**(params or {}), **kwargs})
        lib = _lib()
        im = as_pil(data, alpha=False)
        arr = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        try:
            out = lib.encode(arr.tobytes(), arr.shape[1], arr.shape[0], p["quality"])
        except Exception as exc:
            raise EncoderError(f"jpegli: {exc}") from None
        return _with_metadata(out, metadata)

    def versions(self) -> dict[str, str]:
        _lib()
        return {"pyjpegli": importlib.metadata.version("pyjpegli")}


def _with_metadata(jpeg: bytes, metadata: Any) -> bytes:
    """Insert ICC/EXIF/XMP APP segments after SOI when metadata is given (lossless splice)."""
    if metadata is None or not (getattr(metadata, "icc_profile", None) or getattr(metadata, "exif", None)
                                or getattr(metadata, "xmp", None)):
        return jpeg
    from ._jpeg_markers import insert_metadata

    return insert_metadata(jpeg, metadata)
