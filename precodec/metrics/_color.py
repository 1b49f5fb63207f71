"""Pixel-format helpers shared by the metrics (private).

Everything here works on whole arrays (numpy / OpenCV), never pixel by pixel,
and never writes into the caller's arrays.

Input policy (used by every metric in :mod:`precodec.metrics`)
--------------------------------------------------------------
* numpy arrays: ``uint8`` or ``uint16`` (full range, 65535 = white), shaped
  ``HxW`` (greyscale), ``HxWx1``, ``HxWx2`` (grey + alpha), ``HxWx3`` (RGB) or
  ``HxWx4`` (RGBA).  Samples are taken to be sRGB-encoded; no ICC profile is
  applied.
* PIL images: ``1``, ``L``, ``LA``, ``RGB``, ``RGBA``, ``P``/``PA`` (palette
  expanded, with alpha only when the palette has transparency), ``I;16*``
  (16-bit greyscale), ``CMYK`` and ``YCbCr`` (converted to RGB by Pillow).
  Float and 32-bit integer modes are refused.
* Greyscale is treated as R = G = B, as the reference tools do.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import MetricInputError

__all__ = [
    "to_rgb_alpha",
    "image_size",
    "check_same_size",
    "srgb_to_linear",
    "linear_to_xyb",
    "downsample2x",
    "luma601",
]

# --------------------------------------------------------------------------
# input normalisation


def _pil_to_array(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "RGB", "RGBA", "LA"):
        return np.asarray(img)
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    if mode.startswith("I;16"):
        arr = np.asarray(img)
        return arr.astype(np.uint16, copy=False)
    if mode in ("CMYK", "YCbCr", "RGBX", "RGBa", "La"):
        # premultiplied modes are un-premultiplied by Pillow's convert
        target = "RGBA" if mode == "RGBa" else ("LA" if mode == "La" else "RGB")
        return np.asarray(img.convert(target))
    raise MetricInputError(
        f"unsupported PIL image mode {mode!r} for a metric; use L, LA, RGB, RGBA, P or I;16"
    )


def to_rgb_alpha(image: Any, *, name: str = "image") -> tuple[np.ndarray, np.ndarray | None, int]:
    """Normalise a metric input.

    Returns ``(rgb, alpha, peak)``: ``rgb`` is an ``HxWx3`` integer array
    (possibly a read-only view of the caller's data: never write into it),
    ``alpha`` is ``HxW`` of the same dtype or ``None``, and ``peak`` is 255 or
    65535.  Greyscale is expanded to three equal channels.
    """
    if hasattr(image, "mode") and hasattr(image, "size") and not isinstance(image, np.ndarray):
        arr = _pil_to_array(image)
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise MetricInputError(
            f"{name} must be a numpy array or a PIL image, not {type(image).__name__}"
        )
    if arr.dtype == np.uint8:
        peak = 255
    elif arr.dtype == np.uint16:
        peak = 65535
    else:
        raise MetricInputError(
            f"{name} has dtype {arr.dtype}; metrics take uint8 or uint16 sRGB samples"
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise MetricInputError(
            f"{name} has shape {arr.shape}; expected HxW, HxWx1, HxWx2, HxWx3 or HxWx4"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricInputError(f"{name} is empty (shape {arr.shape})")
    channels = arr.shape[2]
    alpha = None
    if channels in (2, 4):
        alpha = arr[:, :, channels - 1]
        arr = arr[:, :, : channels - 1]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr, alpha, peak


def image_size(image: Any) -> tuple[int, int] | None:
    """``(width, height)`` of an array or PIL image without converting it (None if unknown)."""
    if isinstance(image, np.ndarray):
        if image.ndim < 2:
            return None
        return (int(image.shape[1]), int(image.shape[0]))
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2:
        return (int(size[0]), int(size[1]))
    return None


def check_same_size(reference: Any, distorted: Any) -> None:
    """Raise :class:`MetricInputError` naming both sizes when they differ."""
    a, b = image_size(reference), image_size(distorted)
    if a is not None and b is not None and a != b:
        raise MetricInputError(
            f"image size mismatch: reference is {a[0]}x{a[1]}, distorted is {b[0]}x{b[1]} (width x height)"
        )


# --------------------------------------------------------------------------
# sRGB transfer function

_LUT_CACHE: dict[int, np.ndarray] = {}


def _srgb_eotf(v: np.ndarray) -> np.ndarray:
    """Exact sRGB decoding (IEC 61966-2-1) of float values in 0..1."""
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _lut(peak: int) -> np.ndarray:
    lut = _LUT_CACHE.get(peak)
    if lut is None:
        lut = _srgb_eotf(np.arange(peak + 1, dtype=np.float64) / peak).astype(np.float32)
        _LUT_CACHE[peak] = lut
    return lut


def srgb_to_linear(rgb: np.ndarray, peak: int, out: np.ndarray | None = None) -> np.ndarray:
    """Integer sRGB samples -> float32 linear-light array (0..1), in ``out`` when given."""
    if peak == 255:
        return cv2.LUT(np.ascontiguousarray(rgb), _lut(255), dst=out)
    if out is None:
        return _lut(peak)[rgb]
    np.take(_lut(peak), rgb, out=out)
    return out


def srgb_float_to_linear(v: np.ndarray) -> np.ndarray:
    """Float sRGB-encoded values in 0..1 -> float32 linear light."""
    return _srgb_eotf(v).astype(np.float32)


# --------------------------------------------------------------------------
# XYB (JPEG XL opsin space), rescaled as SSIMULACRA2 does

# Opsin absorbance matrix and bias of JPEG XL (public constants of the format).
_OPSIN = np.array(
    [
        [0.30, 0.622, 0.078],
        [0.23, 0.692, 0.078],
        [0.24342268924547819, 0.20476744424496821, 0.55180986650955360],
    ],
    dtype=np.float64,
)
_OPSIN[0, 1] = 1.0 - 0.078 - 0.30
_OPSIN[1, 1] = 1.0 - 0.078 - 0.23
_OPSIN[2, 2] = 1.0 - 0.24342268924547819 - 0.20476744424496821
_BIAS = 0.0037930732552754493
_CBRT_BIAS = float(np.float32(np.cbrt(np.float64(np.float32(_BIAS)))))

# Affine map 1: linear RGB -> biased cone responses (3x4, last column = bias).
_MIX = np.hstack([_OPSIN, np.full((3, 1), _BIAS)]).astype(np.float32)

# Affine map 2: cube-rooted responses c0, c1, c2 -> SSIMULACRA2's positive XYB:
#   X = 14 * (c0 - c1) / 2 + 0.42
#   Y = (c0 + c1) / 2 - cbrt(bias) + 0.01
#   B = (c2 - cbrt(bias)) - ((c0 + c1) / 2 - cbrt(bias)) + 0.55
_POS = np.array(
    [
        [7.0, -7.0, 0.0, 0.42],
        [0.5, 0.5, 0.0, 0.01 - _CBRT_BIAS],
        [-0.5, -0.5, 1.0, 0.55],
    ],
    dtype=np.float32,
)


def linear_to_xyb(
    linear: np.ndarray,
    *,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
    clamp: bool = True,
) -> np.ndarray:
    """Linear RGB ``HxWx3`` float32 -> SSIMULACRA2's positive XYB.

    The opsin mix is clamped at zero before the cube root, as in libjxl.
    ``clamp=False`` skips that pass when ``linear`` is known to be
    non-negative (then the mix, positive weights plus a positive bias, is
    positive anyway).  ``out`` receives the result and ``scratch`` (same
    shape) the intermediate mix when given; otherwise new arrays are made.
    """
    mixed = cv2.transform(linear, _MIX, dst=scratch)
    if clamp:
        np.maximum(mixed, 0.0, out=mixed)
    _cbrt_f32(mixed)
    return cv2.transform(mixed, _POS, dst=out)


#: values per block of the float64 cube root (8 MB of float64 at a time, whatever the image size)
_CBRT_BLOCK = 1 << 20


def _cbrt_f32(a: np.ndarray) -> None:
    """In-place cube root of a float32 array, correctly rounded: the same bits on every CPU.

    numpy's float32 ``cbrt`` is not correctly rounded and numpy picks its routine by the CPU's vector extensions:
    on an AVX2 machine 12% of values came out an ulp off, and SSIMULACRA2 carries that into its scores: kodim20 at JPEG q90 4:4:4 scored 86.1125 there against
    the reference's 86.0011, over the 0.1 agreement bound that earlier machines met.  The float64 cube root
    (within an ulp or so of float64 everywhere), rounded to float32, is the correctly rounded float32 value on
    every CPU, at about the same speed (XYB of a 768x512 image: 28.6 against 29.4 ms).
    """
    if not a.flags.c_contiguous:
        a[...] = np.cbrt(a.astype(np.float64))
        return
    flat = a.reshape(-1)  # a view: a is contiguous
    for i in range(0, flat.size, _CBRT_BLOCK):
        part = flat[i:i + _CBRT_BLOCK]
        part[...] = np.cbrt(part.astype(np.float64))


def downsample2x(img: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """2x2 box average; an odd last row/column is repeated (edge clamp).

    ``out`` (shape ``((h + 1) // 2, (w + 1) // 2, ...)``) receives the result
    when given.
    """
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        img = cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    return cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), dst=out, interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------
# luma for the classic metrics

_BT601 = np.array([[0.299, 0.587, 0.114]], dtype=np.float32)


def luma601(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma ``Y' = 0.299 R' + 0.587 G' + 0.114 B'`` on the encoded values (float32)."""
    return cv2.transform(np.ascontiguousarray(rgb).astype(np.float32, copy=False), _BT601)
