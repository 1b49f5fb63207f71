"""Exceptions raised by precodec.

Every exception precodec raises derives from :class:`PrecodecError`, so one
``except precodec.PrecodecError`` catches them all.  Errors about bad option
values also derive from :class:`ValueError` (the Pillow convention), errors
about missing optional packages from :class:`ImportError`.

Example
-------
>>> import precodec
>>> try:
...     precodec.optimize(b"not an image")
... except precodec.PrecodecError as exc:
...     print(type(exc).__name__)
ImageInputError
"""

from __future__ import annotations

__all__ = [
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
    "BitstreamMismatchError",
    "TargetUnreachableError",
    "CorruptStreamError",
    "DictionaryError",
    "DecompressionLimitError",
]


class PrecodecError(Exception):
    """Base class of every error raised by precodec."""


class OptionError(PrecodecError, ValueError):
    """An option has a bad value; the message names the option and the value."""


class ImageInputError(PrecodecError):
    """The input is not a readable image (not an image, truncated, corrupt)."""


class ImageTooLargeError(ImageInputError):
    """The image has more pixels than ``PIL.Image.MAX_IMAGE_PIXELS`` allows."""


class UnsupportedModeError(ImageInputError):
    """The image mode (or bit depth) cannot be handled."""


class AnimatedImageError(ImageInputError):
    """Animated / multi-frame inputs are refused."""


class MetricInputError(PrecodecError, ValueError):
    """Images given to a metric do not match in size or mode."""


class MissingDependencyError(PrecodecError, ImportError):
    """An optional dependency is missing; the message says which extra to install."""


class EncoderError(PrecodecError):
    """A stock encoder or decoder failed."""


class ModelError(PrecodecError):
    """A shipped model is missing, corrupt (SHA-256 mismatch) or incompatible."""


class BitstreamError(PrecodecError):
    """A precodec-specific bitstream is corrupt, truncated or from another version/model."""


class BitstreamMismatchError(BitstreamError):
    """A well-formed stream from another format version or model than the one installed."""


class TargetUnreachableError(PrecodecError):
    """The quality target cannot be reached with the allowed encoders and settings."""


class CorruptStreamError(BitstreamError):
    """Zstd (or precodec typed-container) input is corrupt, truncated or not of that format."""


class DictionaryError(PrecodecError):
    """A Zstd frame needs a dictionary that was not given, or another one; the message names the ids."""


class DecompressionLimitError(PrecodecError):
    """Decompressed output would exceed the configured limit (decompression-bomb guard)."""
