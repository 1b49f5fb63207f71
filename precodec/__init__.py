"""precodec: smaller JPEG, AVIF and Zstd files with stock decoders.

Learned models sit in front of unmodified encoders: a per-image parameter
predictor, a denoiser, Zstd dictionaries and parameters.  Outputs are plain
files every decoder reads; the learned image codec is an opt-in backend.

Example
-------
>>> import precodec
>>> r = precodec.optimize(precodec.sample_path(), format="jpeg", target="ssimulacra2:70")  # doctest: +SKIP
>>> r.record.to_json()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .errors import (
    AnimatedImageError,
    BitstreamError,
    EncoderError,
    ImageInputError,
    ImageTooLargeError,
    MetricInputError,
    MissingDependencyError,
    ModelError,
    OptionError,
    PrecodecError,
    TargetUnreachableError,
    UnsupportedModeError,
)

__all__ = [
    "__version__",
    "optimize",
    "zstd",
    "sample_path",
    "load_image",
    "Target",
    "Result",
    "DecisionRecord",
    "PrecodecError",
    "OptionError",
    "ImageInputError",
    "ImageTooLargeError",
    "UnsupportedModeError",
    "AnimatedImageError",
    "MetricInputError",
    "MissingDependencyError",
    "EncoderError",
    "ModelError",
    "BitstreamError",
    "TargetUnreachableError",
]


def optimize(image: Any, **options: Any) -> Any:
    """Encode ``image`` at the smallest settings reaching a quality target.

    See :func:`precodec.pipeline.optimize` for the options.
    """
    from .pipeline import optimize as _optimize

    return _optimize(image, **options)


def sample_path() -> str:
    """Path of the sample image bundled with the package (Kodak kodim23, 384x256)."""
    from importlib.resources import files

    return str(files("precodec") / "data" / "sample.png")


def __getattr__(name: str) -> Any:  # lazy public names, nothing heavy on import
    if name == "load_image":
        from .intake import load_image

        return load_image
    if name == "Target":
        from .targets import Target

        return Target
    if name in ("zstd", "metrics", "plugins", "tuners", "preproc", "models"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in ("Result", "DecisionRecord"):
        from . import record

        return getattr(record, name)
    raise AttributeError(f"module 'precodec' has no attribute {name!r}")
