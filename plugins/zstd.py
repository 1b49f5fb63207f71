"""Zstandard through the ``zstandard`` package; output is a standard Zstd frame.

Parameters: ``level`` (-7..22, negative = fast modes), ``window_log`` (0 =
level default, else 10..27), ``long_distance`` (long-distance matching),
``checksum`` (content checksum in the frame) and an optional ``dictionary``
(raw bytes of a trained dictionary, or a ``zstandard.ZstdCompressionDict``),
given to :meth:`ZstdCodec.encode` as a keyword since it is data, not a setting.

Example
-------
>>> from precodec.plugins.zstd import ZstdCodec
>>> z = ZstdCodec()
>>> z.decode(z.encode(b"hello " * 100, {"level": 19}))[:11]
b'hello hello'
"""

from __future__ import annotations

from typing import Any, Mapping

import zstandard

from ..errors import EncoderError, OptionError
from .base import Codec, Param, ParamSpace

__all__ = ["ZstdCodec", "DEFAULT_MAX_OUTPUT"]

#: default bound on decompressed size (decompression-bomb limit), bytes
DEFAULT_MAX_OUTPUT = 1 << 31


class ZstdCodec(Codec):
    """Standard Zstd frames (any ``zstd`` binary decodes them, ``-D`` with a dictionary)."""

    name = "zstd"
    format = "zstd"
    extensions = (".zst",)
    media_type = "application/zstd"
    space = ParamSpace(
        (
            Param("level", "int", 3, -7, 22, doc="compression level; negative levels are the fast modes"),
            Param("window_log", "int", 0, 0, 27, doc="log2 window size (0 = the level's default, else >= 10)"),
            Param("long_distance", "bool", False, doc="long-distance matching"),
            Param("checksum", "bool", True, doc="write a content checksum"),
        )
    )

    @staticmethod
    def _dict(dictionary: Any) -> zstandard.ZstdCompressionDict | None:
        if dictionary is None:
            return None
        if isinstance(dictionary, zstandard.ZstdCompressionDict):
            return dictionary
        if isinstance(dictionary, (bytes, bytearray, memoryview)):
            return zstandard.ZstdCompressionDict(bytes(dictionary))
        raise OptionError(f"dictionary must be bytes or ZstdCompressionDict, got {type(dictionary).__name__!r}")

    def compression_parameters(self, params: Mapping[str, Any] | None = None) -> zstandard.ZstdCompressionParameters:
        """The validated settings as a ``zstandard.ZstdCompressionParameters`` value object."""
        p = self.space.validate(params)
        if p["window_log"] and p["window_log"] < 10:
            raise OptionError(f"window_log={p['window_log']!r} must be 0 (default) or 10..27")
        kw: dict[str, Any] = {"write_checksum": p["checksum"]}
        if p["window_log"]:
            kw["window_log"] = p["window_log"]
        if p["long_distance"]:
            kw["enable_ldm"] = True
        return zstandard.ZstdCompressionParameters.from_level(p["level"], **kw)

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, dictionary: Any = None,
               **kwargs: Any) -> bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise OptionError(f"zstd encodes bytes, got {type(data).__name__!r}")
        cp = self.compression_parameters({**(params or {}), **kwargs})
        try:
            c = zstandard.ZstdCompressor(compression_params=cp, dict_data=self._dict(dictionary))
            return c.compress(bytes(data))
        except zstandard.ZstdError as exc:
            raise EncoderError(f"zstd: {exc}") from None

    def decode(self, data: bytes, *, dictionary: Any = None, max_output_size: int = DEFAULT_MAX_OUTPUT) -> bytes:
        try:
            d = zstandard.ZstdDecompressor(dict_data=self._dict(dictionary), max_window_size=1 << 27)
            reader = d.stream_reader(bytes(data), read_across_frames=True)
            out = bytearray()
            while True:
                chunk = reader.read(1 << 20)
                if not chunk:
                    break
                out += chunk
                if len(out) > max_output_size:
                    raise EncoderError(f"zstd: decompressed size exceeds the limit of {max_output_size} bytes")
            return bytes(out)
        except zstandard.ZstdError as exc:
            raise EncoderError(f"zstd: cannot decode ({exc})") from None

    def versions(self) -> dict[str, str]:
        return {"zstandard": zstandard.__version__, "libzstd": ".".join(map(str, zstandard.ZSTD_VERSION))}
