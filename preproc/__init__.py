"""Pre-processing in front of the stock encoders: noise estimation, denoising, content guard.

:func:`preprocess` is the one entry point the pipeline calls.  It returns the
image to hand to the encoder and the reference the quality target is measured
against (the original, or the denoised image when the caller declared the
noise unwanted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import OptionError

__all__ = ["DENOISE_MODES", "Preprocessed", "preprocess"]

DENOISE_MODES = ("off", "auto", "clean")


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


def preprocess(image: Any, reference: np.ndarray, *, denoise: str = "off", record: Any = None) -> Preprocessed:
    """Apply the requested pre-processing; ``denoise="off"`` returns the inputs unchanged."""
    if denoise not in DENOISE_MODES:
        raise OptionError(f"denoise={denoise!r} is not one of {list(DENOISE_MODES)}")
    if record is not None:
        record.preprocessing.setdefault("denoise", denoise)
    if denoise == "off":
        return Preprocessed(image, reference)
    raise OptionError(f"denoise={denoise!r} is not available in this build yet")
