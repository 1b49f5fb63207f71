"""Helpers shared by the image backends."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..errors import MissingDependencyError, OptionError

SUBSAMPLING_TO_PIL = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def as_pil(image: Any, *, alpha: bool) -> Image.Image:
    """Return a PIL image in a mode the encoder takes (never the caller's object mutated)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    if not isinstance(image, Image.Image):
        raise OptionError(f"expected a PIL image or numpy array, got {type(image).__name__!r}")
    ok = ("L", "RGB", "LA", "RGBA") if alpha else ("L", "RGB")
    if image.mode not in ok:
        raise OptionError(f"image mode {image.mode!r} cannot be encoded here; expected one of {list(ok)}")
    return image


def metadata_kwargs(metadata: Any) -> dict[str, Any]:
    """Pillow save() keywords carrying ICC, EXIF and XMP."""
    kw: dict[str, Any] = {}
    if metadata is None:
        return kw
    if getattr(metadata, "icc_profile", None):
        kw["icc_profile"] = metadata.icc_profile
    if getattr(metadata, "exif", None):
        kw["exif"] = metadata.exif
    if getattr(metadata, "xmp", None):
        kw["xmp"] = metadata.xmp
    return kw


def optional_module(module: str, backend: str) -> Any:
    """Import ``module`` for ``backend`` or raise MissingDependencyError naming the ``anchors`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"the {backend} backend needs {module}: pip install precodec[anchors]") from None
