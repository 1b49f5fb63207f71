"""AVIF through Pillow.

Pillow's built-in AVIF support is used when ``PIL.features.check("avif")``
says so; otherwise the ``pillow-avif-plugin`` package is imported, which
registers its own handler.  Encoding goes through whichever handler owns
``Image.SAVE["AVIF"]``, so both keep working.

Parameters: ``quality`` 0-100 (libavif's quality scale), ``speed`` 0-10
(0 slowest/best), ``subsampling`` "4:4:4" / "4:2:2" / "4:2:0".

Example
-------
>>> import numpy as np
>>> from precodec.plugins.avif import AvifCodec
>>> data = AvifCodec().encode(np.zeros((16, 16, 3), np.uint8), {"quality": 60, "speed": 8})
>>> data[4:12]
b'ftypavif'
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import PIL
from PIL import Image, features

from ..errors import EncoderError, MissingDependencyError
from ._image_util import as_pil, metadata_kwargs
from .base import ImageCodec, Param, ParamSpace

__all__ = ["AvifCodec", "ensure_avif"]


def ensure_avif() -> str:
    """Make sure an AVIF handler is registered; return which one ("pillow" or "pillow-avif-plugin")."""
    if features.check("avif"):
        return "pillow"
    if "AVIF" not in Image.SAVE:
        try:
            import pillow_avif  # noqa: F401  (registers the handler)
        except ImportError:
            raise MissingDependencyError(
                "AVIF needs Pillow built with AVIF or the pillow-avif-plugin package: pip install pillow-avif-plugin"
            ) from None
    return "pillow-avif-plugin"


class AvifCodec(ImageCodec):
    """AVIF (libavif with aom) through Pillow."""

    name = "avif"
    format = "avif"
    extensions = (".avif",)
    media_type = "image/avif"
    alpha = True
    subsamplings = ("4:4:4", "4:2:2", "4:2:0")
    space = ParamSpace(
        (
            Param("quality", "int", 75, 0, 100, doc="libavif quality scale"),
            Param("speed", "int", 6, 0, 10, doc="encoder speed, 0 slowest"),
            Param("subsampling", "choice", "4:2:0", choices=("4:4:4", "4:2:2", "4:2:0"), doc="chroma subsampling"),
        )
    )

    @classmethod
    def require(cls) -> None:
        ensure_avif()

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, metadata: Any = None, **kwargs: Any) -> bytes:
        p = self.space.validate({**(params or {}), **kwargs})
        ensure_avif()
        im = as_pil(data, alpha=True)
        buf = io.BytesIO()
        try:
            im.save(buf, "AVIF", quality=p["quality"], speed=p["speed"], subsampling=p["subsampling"],
                    **metadata_kwargs(metadata))
        except (OSError, ValueError) as exc:
            raise EncoderError(f"avif: {exc}") from None
        return buf.getvalue()

    def decode(self, data: bytes) -> Any:
        ensure_avif()
        return super().decode(data)

    def versions(self) -> dict[str, str]:
        out = {"pillow": PIL.__version__, "handler": ensure_avif()}
        if out["handler"] == "pillow":
            out["libavif"] = str(features.version("avif"))
        else:  # pragma: no cover - depends on the install
            import pillow_avif

            out["pillow-avif-plugin"] = getattr(pillow_avif, "__version__", "?")
        return out
