"""Splice metadata segments (EXIF APP1, XMP APP1, ICC APP2) into a JPEG stream."""

from __future__ import annotations

import struct
from typing import Any

_XMP_NS = b"http://ns.adobe.com/xap/1.0/\x00"
_ICC_NS = b"ICC_PROFILE\x00"


def _segment(marker: int, payload: bytes) -> bytes:
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("metadata segment too large for one JPEG marker")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _icc_segments(icc: bytes) -> list[bytes]:
    chunk = 65519 - len(_ICC_NS) - 2
    parts = [icc[i : i + chunk] for i in range(0, len(icc), chunk)] or [b""]
    return [_segment(0xE2, _ICC_NS + bytes([i + 1, len(parts)]) + part) for i, part in enumerate(parts)]


def insert_metadata(jpeg: bytes, metadata: Any) -> bytes:
    """Return ``jpeg`` with EXIF, XMP and ICC segments inserted after SOI (and any JFIF APP0)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep JFIF APP0 first
        (length,) = struct.unpack(">H", jpeg[4:6])
        pos = 4 + length
    segs = []
    exif = getattr(metadata, "exif", None)
    if exif:
        segs.append(_segment(0xE1, exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif))
    xmp = getattr(metadata, "xmp", None)
    if xmp:
        segs.append(_segment(0xE1, _XMP_NS + xmp))
    icc = getattr(metadata, "icc_profile", None)
    if icc:
        segs.extend(_icc_segments(icc))
    return jpeg[:pos] + b"".join(segs) + jpeg[pos:]
