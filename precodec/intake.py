"""Image intake shared by every entry point.

:func:`load_image` turns a path, bytes, file object, PIL image or numpy array
into an :class:`Intake`: a private, normalised 8-bit copy (``L``, ``LA``,
``RGB`` or ``RGBA``) with EXIF orientation applied, plus the metadata (ICC
profile, EXIF, XMP) to carry to the output.  The caller's object is never
modified.

Policy
------
* Orientation: the EXIF orientation is applied to the pixels and the carried
  EXIF gets orientation 1, so viewers do not rotate twice.
* Modes: ``1`` -> ``L``; ``P``/``PA`` -> ``RGB``/``RGBA`` (``RGBA`` only when the
  palette has transparency); ``CMYK`` -> ``RGB`` (naive conversion, or through
  the embedded ICC profile when it is CMYK and LittleCMS is present);
  ``YCbCr`` -> ``RGB``; 16-bit greyscale (``I;16*``, ``I`` with values up to
  65535) -> ``L`` by rounding ``v / 257``.  Float (``F``), ``LAB``, ``HSV``
  and 32-bit integer data beyond 16 bits are refused with
  :class:`~precodec.errors.UnsupportedModeError`.  numpy arrays must be
  ``uint8`` or ``uint16`` with 1, 2, 3 or 4 channels.
* Animated inputs (more than one frame) are refused with
  :class:`~precodec.errors.AnimatedImageError`.
* Decompression bombs: an image with more than ``PIL.Image.MAX_IMAGE_PIXELS``
  pixels (read at call time; ``None`` disables the check) raises
  :class:`~precodec.errors.ImageTooLargeError` on every path, numpy included,
  before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from typing import IO, Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    AnimatedImageError,
    ImageInputError,
    ImageTooLargeError,
    OptionError,
    UnsupportedModeError,
)

__all__ = ["Intake", "Metadata", "load_image", "ImageSource", "check_pixel_limit"]

ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

_OK_MODES = ("L", "LA", "RGB", "RGBA")


@dataclass(frozen=True)
class Metadata:
    """Metadata carried from the input to the output.

    Attributes
    ----------
    icc_profile : bytes or None
        The embedded ICC profile, as found.
    exif : bytes or None
        The EXIF block with orientation reset to 1 (pixels are already rotated).
    xmp : bytes or None
        The XMP packet.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None

    def stripped(self) -> "Metadata":
        """Return empty metadata (``strip_metadata=True``)."""
        return Metadata()

    def as_dict(self) -> dict[str, int]:
        """Sizes in bytes of what is carried, for decision records."""
        return {k: len(v) for k, v in (("icc_profile", self.icc_profile), ("exif", self.exif), ("xmp", self.xmp)) if v}


@dataclass(frozen=True)
class Intake:
    """A normalised private copy of an input image.

    Attributes
    ----------
    image : PIL.Image.Image
        8-bit image in mode ``L``, ``LA``, ``RGB`` or ``RGBA``; never the caller's object.
    metadata : Metadata
        What to carry to the output.
    source_format : str or None
        The container format of the input (``"JPEG"``, ``"PNG"``...), None for arrays.
    source_bytes : int or None
        Size of the encoded input when it was a file or bytes.
    source_mode : str
        The mode before normalisation.
    notes : tuple of str
        What normalisation did (for the decision record).
    """

    image: Image.Image
    metadata: Metadata = field(default_factory=Metadata)
    source_format: str | None = None
    source_bytes: int | None = None
    source_mode: str = ""
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def mode(self) -> str:
        return self.image.mode

    @property
    def has_alpha(self) -> bool:
        return self.image.mode in ("LA", "RGBA")

    def alpha_is_opaque(self) -> bool:
        """True when there is no alpha channel or every alpha value is 255."""
        if not self.has_alpha:
            return True
        lo, _ = self.image.getchannel("A").getextrema()
        return lo == 255

    def pixels(self) -> np.ndarray:
        """Return a fresh uint8 array (H, W) or (H, W, C) of the normalised image."""
        return np.asarray(self.image).copy()

    def rgb(self) -> np.ndarray:
        """Colour pixels without alpha: (H, W, 3) uint8 for colour, (H, W) for grey."""
        im = self.image
        if im.mode == "RGBA":
            im = im.convert("RGB")
        elif im.mode == "LA":
            im = im.convert("L")
        return np.asarray(im)


def check_pixel_limit(width: int, height: int) -> None:
    """Raise :class:`ImageTooLargeError` when ``width * height`` exceeds Pillow's limit.

    Uses ``PIL.Image.MAX_IMAGE_PIXELS`` as it is at call time (``None`` disables).

    Examples
    --------
    >>> check_pixel_limit(768, 512)
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ImageTooLargeError(
            f"image of {width}x{height} = {width * height} pixels exceeds the limit of {limit} "
            "pixels (PIL.Image.MAX_IMAGE_PIXELS); raise that limit if the input is trusted"
        )


def _open(source: Any) -> tuple[Image.Image, int | None]:
    """Open without decoding pixels; map Pillow's errors onto ours."""
    size: int | None = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageInputError("empty input: 0 bytes")
        size = len(data)
        fp: Any = io.BytesIO(data)
        name = "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            size = os.path.getsize(name)
        except OSError as exc:
            raise ImageInputError(f"cannot read {name!r}: {exc.strerror or exc}") from None
        if size == 0:
            raise ImageInputError(f"{name!r} is empty (0 bytes)")
        fp = name
    elif hasattr(source, "read"):
        data = source.read()
        if not data:
            raise ImageInputError("empty input stream")
        size = len(data)
        fp = io.BytesIO(data)
        name = getattr(source, "name", "<stream>")
    else:
        raise OptionError(f"unsupported image source of type {type(source).__name__!r}")
    try:
        with warnings.catch_warnings():
            # our own, stricter limit is checked below: turn Pillow's warning into silence
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{name}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{name}: cannot open image ({exc})") from None
    return im, size


def _frames(im: Image.Image) -> int:
    return int(getattr(im, "n_frames", 1) or 1)


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise UnsupportedModeError(f"array of shape {arr.shape} is not an image: expected (H, W) or (H, W, 1|2|3|4)")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        raise ImageInputError(f"array of shape {arr.shape} has no pixels")
    check_pixel_limit(w, h)
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        raise UnsupportedModeError(f"array dtype {arr.dtype} is not supported: use uint8 or uint16")
    arr = np.ascontiguousarray(arr)  # never share memory with the caller
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(arr.copy())  # infers L, LA, RGB or RGBA from the shape


def _normalise_mode(im: Image.Image, notes: list[str]) -> Image.Image:
    mode = im.mode
    if mode in _OK_MODES:
        return im
    if mode == "1":
        notes.append("mode 1 converted to L")
        return im.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        out = im.convert("RGBA" if has_alpha else "RGB")
        notes.append(f"palette converted to {out.mode}")
        return out
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return im.convert("RGB")
    if mode == "YCbCr":
        return im.convert("RGB")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if arr.dtype.kind not in "iu":
            raise UnsupportedModeError(f"image mode {mode!r} with dtype {arr.dtype} is not supported")
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise UnsupportedModeError(
                f"image mode {mode!r} holds values {lo}..{hi}, outside 16-bit range; convert it to 8 bits first"
            )
        notes.append(f"16-bit greyscale ({mode}) reduced to 8-bit L")
        return Image.fromarray(((arr.astype(np.uint32) + 128) // 257).astype(np.uint8), mode="L")
    raise UnsupportedModeError(
        f"image mode {mode!r} is not supported: precodec handles L, LA, RGB, RGBA, P, 1, CMYK, YCbCr and 16-bit greyscale"
    )


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # corrupt EXIF must not stop the image
        return 1


def _exif_without_orientation(im: Image.Image) -> bytes | None:
    """The EXIF block with orientation set to 1, built on a copy (the caller's image is untouched)."""
    try:
        src = im.getexif()
        if not src:
            return im.info.get("exif") or None
        exif = Image.Exif()
        exif.load(src.tobytes())
        if 0x0112 in exif:
            exif[0x0112] = 1
        return exif.tobytes()
    except Exception:  # corrupt EXIF: carry it as found
        return im.info.get("exif") or None


def _xmp(im: Image.Image) -> bytes | None:
    x = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(x, str):
        x = x.encode("utf-8")
    return x or None


def load_image(source: ImageSource, *, strip_metadata: bool = False) -> Intake:
    """Decode and normalise an image from any supported source.

    Parameters
    ----------
    source : path, bytes, file object, PIL.Image.Image or numpy.ndarray
        The input. PIL images and arrays are copied, never modified.
    strip_metadata : bool, optional
        Drop ICC, EXIF and XMP instead of carrying them (default False).

    Returns
    -------
    Intake
        The normalised private copy and its metadata.

    Raises
    ------
    ImageInputError
        Not an image, truncated or corrupt (subclasses: ImageTooLargeError,
        UnsupportedModeError, AnimatedImageError).

    Examples
    --------
    >>> import numpy as np
    >>> it = load_image(np.zeros((4, 6, 3), np.uint8))
    >>> it.size, it.mode
    ((6, 4), 'RGB')
    """
    notes: list[str] = []
    size: int | None = None
    fmt: str | None = None
    if isinstance(source, np.ndarray):
        im = _from_array(source)
        src_mode = im.mode
    else:
        if isinstance(source, Image.Image):
            im = source
        else:
            im, size = _open(source)
            fmt = im.format
        check_pixel_limit(*im.size)
        if im.size[0] == 0 or im.size[1] == 0:
            raise ImageInputError(f"image of size {im.size} has no pixels")
        if _frames(im) > 1:
            raise AnimatedImageError(
                f"animated or multi-frame image ({_frames(im)} frames) is not supported; extract a frame first"
            )
        src_mode = im.mode
        if not isinstance(source, Image.Image):
            try:
                im.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageInputError(f"cannot decode image: {exc}") from None
        fmt = fmt or getattr(im, "format", None)
    info = dict(im.info)
    orientation = _orientation(im)
    meta = Metadata(
        icc_profile=info.get("icc_profile") or None,
        exif=_exif_without_orientation(im),
        xmp=_xmp(im),
    )
    if orientation != 1:
        im = ImageOps.exif_transpose(im)  # returns a new image
        notes.append(f"EXIF orientation {orientation} applied")
    out = _normalise_mode(im, notes)
    if out is im or out is source:
        out = im.copy()  # private copy: the caller's image is never touched
    out.info.clear()
    if strip_metadata:
        meta = meta.stripped()
    return Intake(
        image=out,
        metadata=meta,
        source_format=fmt,
        source_bytes=size,
        source_mode=src_mode,
        notes=tuple(notes),
    )
