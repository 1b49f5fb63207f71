"""The ``.pcl`` container of precodec's learned image codec (format version 1).

Layout (all integers big-endian)::

    offset size  field
    0      4     magic b"\\x89PCL"
    4      1     format version (1)
    5      2     model id, from the frozen table MODEL_IDS
    7      8     first 8 bytes of the model digest (sha256 over the four ONNX files' sha256)
    15     4     width   (1 .. 65535)
    19     4     height  (1 .. 65535)
    23     1     mode    (0 = "L", 1 = "RGB")
    24     1     rate point (0 .. number of rate points - 1)
    25     1     flags (reserved, 0)
    26     4     payload length in bytes (a multiple of 4)
    30     n     payload: one range-coder stream (constriction, 32-bit words, little-endian)
    30+n   4     CRC-32 of bytes 0 .. 30+n-1

Numeric model ids are frozen by hand here and never derived from dict order:
an id, once published, always means the same weights.

Example
-------
>>> h = Header(model_id=1, digest=bytes(8), width=3, height=2, mode="RGB", rate=2)
>>> blob = pack(h, b"")
>>> unpack(blob)[0] == h
True
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError, BitstreamMismatchError

__all__ = ["MAGIC", "FORMAT_VERSION", "MODEL_IDS", "MODES", "Header", "pack", "unpack", "peek_header", "HEADER_SIZE"]

MAGIC = b"\x89PCL"
FORMAT_VERSION = 1
# frozen: never renumber, never reuse an id
MODEL_IDS: dict[int, str] = {
    1: "learned-hp48-v1",
    2: "learned-hp48-v2",
    3: "learned-hp48-v3",
    4: "learned-hp48-v4",
    5: "learned-hp48-v5",
}
MODES = ("L", "RGB")
MAX_SIDE = 65535
_FMT = ">4sBH8sIIBBBI"
HEADER_SIZE = struct.calcsize(_FMT)  # 30
CRC_SIZE = 4


@dataclass(frozen=True)
class Header:
    """Parsed header fields (``digest`` is the 8-byte model digest prefix)."""

    model_id: int
    digest: bytes
    width: int
    height: int
    mode: str
    rate: int
    flags: int = 0
    version: int = FORMAT_VERSION

    @property
    def model_name(self) -> str:
        return MODEL_IDS.get(self.model_id, f"unknown model id {self.model_id}")


def pack(header: Header, payload: bytes) -> bytes:
    """Serialise a header and payload (a multiple of 4 bytes) into a stream with its CRC."""
    if len(payload) % 4:
        raise BitstreamError("payload must be whole 32-bit words")
    if not (1 <= header.width <= MAX_SIDE and 1 <= header.height <= MAX_SIDE):
        raise BitstreamError(f"image size {header.width}x{header.height} does not fit the container (max {MAX_SIDE})")
    head = struct.pack(
        _FMT, MAGIC, header.version, header.model_id, header.digest, header.width, header.height,
        MODES.index(header.mode), header.rate, header.flags, len(payload),
    )
    body = head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def peek_header(data: bytes) -> Header:
    """Parse and sanity-check the header only (no CRC check); raises BitstreamError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a precodec learned-codec stream (bad magic bytes)")
    if len(data) < 5:
        raise BitstreamError("truncated stream: header incomplete")
    if data[4] != FORMAT_VERSION:
        raise BitstreamMismatchError(
            f"stream has format version {data[4]}, this precodec reads version {FORMAT_VERSION}"
        )
    if len(data) < HEADER_SIZE:
        raise BitstreamError(f"truncated stream: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    _, version, model_id, digest, w, h, mode, rate, flags, _n = struct.unpack(_FMT, data[:HEADER_SIZE])
    if mode >= len(MODES):
        raise BitstreamError(f"bad image mode code {mode}")
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        raise BitstreamError(f"bad image size {w}x{h}")
    if flags != 0:
        raise BitstreamError(f"unknown flags {flags:#x}")
    return Header(model_id, digest, w, h, MODES[mode], rate, flags, version)


def unpack(data: bytes) -> tuple[Header, bytes]:
    """Check magic, version, length and CRC; return the header and the payload."""
    header = peek_header(data)
    data = bytes(data)
    n = struct.unpack(">I", data[HEADER_SIZE - 4 : HEADER_SIZE])[0]
    if n % 4:
        raise BitstreamError(f"bad payload length {n}")
    end = HEADER_SIZE + n
    if len(data) < end + CRC_SIZE:
        raise BitstreamError(f"truncated stream: {len(data)} bytes, expected {end + CRC_SIZE}")
    if len(data) > end + CRC_SIZE:
        raise BitstreamError(f"{len(data) - end - CRC_SIZE} trailing bytes after the stream")
    crc = struct.unpack(">I", data[end:end + CRC_SIZE])[0]
    if zlib.crc32(data[:end]) != crc:
        raise BitstreamError("stream is corrupt (CRC-32 mismatch)")
    return header, data[HEADER_SIZE:end]
