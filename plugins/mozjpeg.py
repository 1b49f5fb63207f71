"""mozjpeg through the optional ``jpeglib`` package (which bundles several libjpeg builds).

Output is ordinary (progressive, trellis-quantised) JPEG. Parameters:
``quality`` 1-100 and ``subsampling`` "4:4:4" / "4:2:2" / "4:2:0".
Install with ``pip install precodec[anchors]``.

``jpeglib`` selects its libjpeg build through process-wide state and writes
through files, so encodes are serialised with a lock and go through a
temporary file.
"""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
import threading
from typing import Any, Mapping

import numpy as np

from ..errors import EncoderError
from ._image_util import as_pil, optional_module
from ._jpeg_markers import insert_metadata
from .base import ImageCodec, Param, ParamSpace

__all__ = ["MozjpegCodec"]

_LOCK = threading.Lock()
_VERSION = "mozjpeg403"
# jpeglib takes (vertical, horizontal) factors per component
_SAMP = {"4:4:4": ((1, 1), (1, 1), (1, 1)), "4:2:2": ((1, 2), (1, 1), (1, 1)), "4:2:0": ((2, 2), (1, 1), (1, 1))}


def _lib() -> Any:
    return optional_module("jpeglib", "mozjpeg")


class MozjpegCodec(ImageCodec):
    """JPEG encoded by mozjpeg 4 (decoded by any JPEG decoder)."""

    name = "mozjpeg"
    format = "jpeg"
    extensions = (".jpg", ".jpeg")
    media_type = "image/jpeg"
    subsamplings = ("4:4:4", "4:2:2", "4:2:0")
    space = ParamSpace(
        (
            Param("quality", "int", 75, 1, 100, doc="mozjpeg quality"),
            Param("subsampling", "choice", "4:2:0", choices=("4:4:4", "4:2:2", "4:2:0"), doc="chroma subsampling"),
        )
    )

    @classmethod
    def require(cls) -> None:
        _lib()

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, metadata: Any = None, **kwargs: Any) -> bytes:
        p = self.space.validate({**(params or {}), **kwargs})
        jpeglib = _lib()
        im = as_pil(data, alpha=False)
        arr = np.ascontiguousarray(np.asarray(im))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        fd, path = tempfile.mkstemp(suffix=".jpg", prefix="precodec-moz-")
        os.close(fd)
        try:
            with _LOCK:
                jpeglib.version.set(_VERSION)
                s = jpeglib.from_spatial(arr)
                if arr.shape[2] == 3:
                    s.samp_factor = _SAMP[p["subsampling"]]
                s.write_spatial(path, qt=p["quality"])
            with open(path, "rb") as f:
                out = f.read()
        except Exception as exc:
            raise EncoderError(f"mozjpeg: {exc}") from None
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        if metadata is not None and (metadata.icc_profile or metadata.exif or metadata.xmp):
            out = insert_metadata(out, metadata)
        return out

    def versions(self) -> dict[str, str]:
        _lib()
        return {"jpeglib": importlib.metadata.version("jpeglib"), "libjpeg": _VERSION}
