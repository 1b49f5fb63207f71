"""Zstandard through the ``zstandard`` package; output is a standard Zstd frame.

Parameters: ``level`` (-7..22, negative = fast modes), ``window_log`` (0 =
level default, else 10..27), ``long_distance`` (long-distance matching),
``checksum`` (content checksum in the frame) and an optional ``dictionary``
(raw bytes of a trained dictionary, or a ``zstandard.ZstdCompressionDict``),
given to :meth:`ZstdCodec.encode` as a keyword since it is data, not a setting.

Decoding is streaming with bounded memory (:meth:`ZstdCodec.decode_stream`):
a small frame walker (:class:`FrameWalker`) follows frame and block
boundaries alongside the decoder, so a truncated input, foreign bytes, a
missing or wrong dictionary (named by the dictionary id in the frame header)
and output beyond the decompression-bomb limit all end in a clear
:class:`~precodec.errors.PrecodecError`.

Example
-------
>>> from precodec.plugins.zstd import ZstdCodec
>>> z = ZstdCodec()
>>> z.decode(z.encode(b"hello " * 100, {"level": 19}))[:11]
b'hello hello'
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO, Mapping

import zstandard

from ..errors import (
    CorruptStreamError,
    DecompressionLimitError,
    DictionaryError,
    EncoderError,
    OptionError,
)
from .base import Codec, Param, ParamSpace

__all__ = [
    "ZstdCodec",
    "DEFAULT_MAX_OUTPUT",
    "MAX_WINDOW_LOG",
    "ZSTD_MAGIC",
    "FrameHeader",
    "FrameWalker",
    "dictionary_id",
    "as_dictionary",
    "skippable_frame",
]

#: default bound on decompressed size (decompression-bomb limit), bytes
DEFAULT_MAX_OUTPUT = 1 << 31
#: largest window precodec writes or accepts (the stock ``zstd`` CLI's default limit)
MAX_WINDOW_LOG = 27
#: the 4 bytes every Zstd frame starts with
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_DICT_MAGIC = b"\x37\xa4\x30\xec"
_READ = 1 << 20


def as_dictionary(dictionary: Any) -> zstandard.ZstdCompressionDict | None:
    """``None``, raw dictionary bytes or a ``ZstdCompressionDict`` -> ``ZstdCompressionDict`` (or None)."""
    if dictionary is None:
        return None
    if isinstance(dictionary, zstandard.ZstdCompressionDict):
        return dictionary
    if isinstance(dictionary, (bytes, bytearray, memoryview)):
        if len(dictionary) == 0:
            raise DictionaryError("the dictionary is empty")
        return zstandard.ZstdCompressionDict(bytes(dictionary))
    raise OptionError(f"dictionary must be bytes or ZstdCompressionDict, got {type(dictionary).__name__!r}")


def dictionary_id(dictionary: Any) -> int:
    """The id a dictionary writes into frame headers (0 for raw-content dictionaries or None).

    Examples
    --------
    >>> dictionary_id(None)
    0
    """
    d = as_dictionary(dictionary)
    return 0 if d is None else int(d.dict_id())


def skippable_frame(payload: bytes, *, variant: int = 0) -> bytes:
    """A Zstd skippable frame (magic ``0x184D2A5?``): every decoder ignores it, precodec reads metadata from it.

    Examples
    --------
    >>> skippable_frame(b"abc")[:4].hex()
    '502a4d18'
    """
    if not 0 <= variant <= 15:
        raise OptionError(f"variant={variant!r} must be 0..15")
    return bytes([0x50 | variant, 0x2A, 0x4D, 0x18]) + len(payload).to_bytes(4, "little") + payload


@dataclass(frozen=True)
class FrameHeader:
    """What a Zstd frame header says (or a skippable frame's size).

    Attributes
    ----------
    offset : int
        Byte offset of the frame in the stream.
    skippable : bool
    dict_id : int
        Dictionary id the frame needs (0: none, or not recorded).
    content_size : int or None
        Decompressed size if the header records it.
    window_size : int
    checksum : bool
    """

    offset: int
    skippable: bool = False
    dict_id: int = 0
    content_size: int | None = None
    window_size: int = 0
    checksum: bool = False
    skippable_size: int = 0


class FrameWalker:
    """Follow Zstd frame and block boundaries in a byte stream without decoding it.

    Feed it bytes in any pieces; it raises :class:`~precodec.errors.CorruptStreamError`
    on foreign bytes and reports truncation in :meth:`close`.  ``on_frame`` is
    called with each :class:`FrameHeader` as soon as it is complete (that is
    where dictionary and size checks happen, before the decoder sees the frame).

    Examples
    --------
    >>> import zstandard
    >>> w = FrameWalker()
    >>> w.feed(zstandard.ZstdCompressor().compress(b"abc") * 2)
    >>> w.close(); w.frames
    2
    """

    def __init__(self, on_frame: Any = None, *, keep: int = 0) -> None:
        self.on_frame = on_frame
        self.offset = 0
        self.frames = 0
        self.skippable = 0
        self.headers: list[FrameHeader] = []  # the first ``keep`` headers
        self._keep = keep
        self._state = "magic"
        self._need = 4
        self._buf = bytearray()
        self._skip = 0
        self._frame_start = 0
        self._fhd = 0
        self._last = False
        self._checksum = False
        self._skip_payload: bytearray | None = None
        self.skippable_payloads: list[bytes] = []

    def _header(self, h: FrameHeader) -> None:
        if len(self.headers) < self._keep:
            self.headers.append(h)
        if self.on_frame is not None:
            self.on_frame(h)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        mv = memoryview(data).cast("B")
        i, n = 0, len(mv)
        while i < n:
            if self._skip:
                k = min(self._skip, n - i)
                if self._skip_payload is not None:
                    self._skip_payload += mv[i:i + k]
                self._skip -= k
                i += k
                self.offset += k
                if not self._skip:
                    self._after_skip()
                continue
            k = min(self._need - len(self._buf), n - i)
            self._buf += mv[i:i + k]
            i += k
            self.offset += k
            if len(self._buf) == self._need:
                b = bytes(self._buf)
                self._buf.clear()
                self._parse(b)

    def _expect(self, state: str, need: int) -> None:
        self._state, self._need = state, need

    def _after_skip(self) -> None:
        if self._state == "skip_payload":
            if self._skip_payload is not None and len(self.skippable_payloads) < 16:
                self.skippable_payloads.append(bytes(self._skip_payload))
            self._skip_payload = None
            self._expect("magic", 4)
        elif self._state == "block_body":
            self._end_block()
        elif self._state == "checksum":
            self._expect("magic", 4)

    def _end_block(self) -> None:
        if not self._last:
            self._expect("block", 3)
        elif self._checksum:
            self._state = "checksum"
            self._skip = 4
        else:
            self._expect("magic", 4)

    def _parse(self, b: bytes) -> None:
        st = self._state
        if st == "magic":
            self._frame_start = self.offset - 4
            if b == ZSTD_MAGIC:
                self._expect("fhd", 1)
            elif b[1:] == b"\x2a\x4d\x18" and (b[0] & 0xF0) == 0x50:
                self._expect("skip_size", 4)
            else:
                raise CorruptStreamError(_foreign(b, self._frame_start))
        elif st == "skip_size":
            size = int.from_bytes(b, "little")
            self.skippable += 1
            self._header(FrameHeader(self._frame_start, skippable=True, skippable_size=size))
            self._state = "skip_payload"
            self._skip_payload = bytearray() if size <= 1 << 16 else None
            self._skip = size
            if not size:
                self._after_skip()
        elif st == "fhd":
            fhd = b[0]
            if fhd & 0x08:
                raise CorruptStreamError(f"corrupt Zstd frame header at byte {self._frame_start} (reserved bit set)")
            self._fhd = fhd
            single = (fhd >> 5) & 1
            fcs = [1 if single else 0, 2, 4, 8][fhd >> 6]
            rest = (0 if single else 1) + [0, 1, 2, 4][fhd & 3] + fcs
            self._expect("hdr_rest", rest)
            if rest == 0:  # cannot happen (single segment always has fcs >= 1), kept for safety
                self._parse(b"")
        elif st == "hdr_rest":
            fhd = self._fhd
            single = (fhd >> 5) & 1
            pos = 0
            window = 0
            if not single:
                wd = b[0]
                exp, mant = wd >> 3, wd & 7
                base = 1 << (10 + exp)
                window = base + (base // 8) * mant
                pos = 1
            dsize = [0, 1, 2, 4][fhd & 3]
            did = int.from_bytes(b[pos:pos + dsize], "little")
            pos += dsize
            fsize = [1 if single else 0, 2, 4, 8][fhd >> 6]
            csize: int | None = None
            if fsize:
                csize = int.from_bytes(b[pos:pos + fsize], "little") + (256 if fsize == 2 else 0)
            if single:
                window = csize or 0
            self._checksum = bool((fhd >> 2) & 1)
            self.frames += 1
            self._header(FrameHeader(self._frame_start, dict_id=did, content_size=csize, window_size=window,
                                     checksum=self._checksum))
            self._expect("block", 3)
        elif st == "block":
            v = int.from_bytes(b, "little")
            self._last = bool(v & 1)
            btype = (v >> 1) & 3
            bsize = v >> 3
            if btype == 3:
                raise CorruptStreamError(f"corrupt Zstd block at byte {self.offset - 3} (reserved block type)")
            if bsize > 1 << 17:
                raise CorruptStreamError(f"corrupt Zstd block at byte {self.offset - 3} (block of {bsize} bytes)")
            self._state = "block_body"
            self._skip = 1 if btype == 1 else bsize
            if not self._skip:
                self._end_block()

    @property
    def complete(self) -> bool:
        """True when the bytes fed so far end exactly at a frame boundary."""
        return self._state == "magic" and not self._buf and not self._skip

    def close(self) -> None:
        """Raise :class:`~precodec.errors.CorruptStreamError` unless the input ended on a frame boundary."""
        if self.offset == 0:
            raise CorruptStreamError("empty input: not a Zstd stream")
        if not self.complete:
            raise CorruptStreamError(
                f"truncated Zstd stream: input ends inside the frame that starts at byte {self._frame_start} "
                f"(read {self.offset} bytes)")


def _foreign(b: bytes, offset: int) -> str:
    if b[:4] == b"PCZT":
        return ("this is a precodec typed container (opt-in typed mode), not a Zstd frame: "
                "decode it with `precodec zstd decompress` (stock zstd cannot read it)")
    if b == _DICT_MAGIC:
        return "this is a Zstd dictionary, not compressed data (give it with --dict / zstd -D)"
    kind = {b"BZh": "bzip2", b"\x1f\x8b\x08": "gzip", b"\xfd7z": "xz", b"PK\x03": "zip"}.get(b[:3], "")
    what = f" (looks like {kind} data)" if kind else ""
    if offset:
        return f"not a Zstd frame at byte {offset}: found {b.hex()} instead of a frame magic{what}"
    return f"not a Zstd stream: starts with {b.hex()}{what}"



class _Tee(io.RawIOBase):
    """A read-only file that hands what it reads to a :class:`FrameWalker` first."""

    def __init__(self, src: BinaryIO, walker: FrameWalker, prefix: bytes = b"") -> None:
        self.src, self.walker, self.prefix = src, walker, prefix
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.error is not None:
            return b""
        if self.prefix:
            data, self.prefix = self.prefix, b""
        else:
            data = self.src.read(n if n and n > 0 else _READ)
        try:
            self.walker.feed(data)
        except BaseException as exc:  # surfaced by decode_stream with its own type
            self.error = exc
            return b""
        return data


class ZstdCodec(Codec):
    """Standard Zstd frames (any ``zstd`` binary decodes them, ``-D`` with a dictionary)."""

    name = "zstd"
    format = "zstd"
    extensions = (".zst",)
    media_type = "application/zstd"
    space = ParamSpace(
        (
            Param("level", "int", 3, -7, 22, doc="compression level; negative levels are the fast modes"),
            Param("window_log", "int", 0, 0, MAX_WINDOW_LOG, doc="log2 window size (0 = the level's default, else >= 10)"),
            Param("long_distance", "bool", False, doc="long-distance matching"),
            Param("checksum", "bool", True, doc="write a content checksum"),
        )
    )

    @staticmethod
    def _dict(dictionary: Any) -> zstandard.ZstdCompressionDict | None:
        return as_dictionary(dictionary)

    def compression_parameters(self, params: Mapping[str, Any] | None = None, *,
                               size_hint: int = 0) -> zstandard.ZstdCompressionParameters:
        """The validated settings as a ``zstandard.ZstdCompressionParameters`` value object.

        Examples
        --------
        >>> ZstdCodec().compression_parameters({"level": 19, "long_distance": True}).enable_ldm
        1
        """
        p = self.space.validate(params)
        if p["window_log"] and p["window_log"] < 10:
            raise OptionError(f"window_log={p['window_log']!r} must be 0 (default) or 10..27")
        kw: dict[str, Any] = {"write_checksum": p["checksum"], "write_dict_id": True, "write_content_size": True}
        wl = p["window_log"]
        if p["long_distance"]:
            kw["enable_ldm"] = True
            wl = wl or MAX_WINDOW_LOG
        if wl:
            kw["window_log"] = wl
        cp = zstandard.ZstdCompressionParameters.from_level(p["level"], source_size=size_hint, **kw)
        if cp.window_log > MAX_WINDOW_LOG:  # levels 20-22 ask for more than stock zstd accepts by default
            kw["window_log"] = MAX_WINDOW_LOG
            cp = zstandard.ZstdCompressionParameters.from_level(p["level"], source_size=size_hint, **kw)
        return cp

    def compressor(self, params: Mapping[str, Any] | None = None, *, dictionary: Any = None,
                   size_hint: int = 0) -> zstandard.ZstdCompressor:
        """A ``zstandard.ZstdCompressor`` for these settings (reuse it for many small inputs)."""
        cp = self.compression_parameters(params, size_hint=size_hint)
        try:
            return zstandard.ZstdCompressor(compression_params=cp, dict_data=self._dict(dictionary))
        except zstandard.ZstdError as exc:
            raise EncoderError(f"zstd: {exc}") from None

    def encode(self, data: Any, params: Mapping[str, Any] | None = None, /, *, dictionary: Any = None,
               **kwargs: Any) -> bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise OptionError(f"zstd encodes bytes, got {type(data).__name__!r}")
        c = self.compressor({**(params or {}), **kwargs}, dictionary=dictionary, size_hint=len(data))
        try:
            return c.compress(bytes(data))
        except zstandard.ZstdError as exc:
            raise EncoderError(f"zstd: {exc}") from None

    def encode_stream(self, src: BinaryIO, dst: BinaryIO, params: Mapping[str, Any] | None = None, /, *,
                      dictionary: Any = None, size: int = -1) -> tuple[int, int]:
        """Compress ``src`` into one frame on ``dst`` with bounded memory; return (bytes read, bytes written).

        Examples
        --------
        >>> import io
        >>> out = io.BytesIO()
        >>> ZstdCodec().encode_stream(io.BytesIO(b"a" * 1000), out)[0]
        1000
        """
        c = self.compressor(params, dictionary=dictionary, size_hint=max(size, 0))
        try:
            r, w = c.copy_stream(src, dst, size=size, read_size=_READ, write_size=_READ)
        except zstandard.ZstdError as exc:
            raise EncoderError(f"zstd: {exc}") from None
        return int(r), int(w)

    def decode(self, data: bytes, *, dictionary: Any = None, max_output_size: int = DEFAULT_MAX_OUTPUT) -> bytes:
        out = io.BytesIO()
        self.decode_stream(io.BytesIO(bytes(data)), out, dictionary=dictionary, max_output_size=max_output_size)
        return out.getvalue()

    def decode_stream(self, src: BinaryIO, dst: BinaryIO, *, dictionary: Any = None,
                      max_output_size: int = DEFAULT_MAX_OUTPUT, prefix: bytes = b"") -> dict[str, int]:
        """Decompress every frame of ``src`` onto ``dst`` with bounded memory.

        Parameters
        ----------
        src, dst : binary file objects
        dictionary : bytes or zstandard.ZstdCompressionDict, optional
            Needed when the frames name a dictionary id; a missing or different
            dictionary raises :class:`~precodec.errors.DictionaryError` naming both ids.
        max_output_size : int
            Decompression-bomb limit in bytes; exceeding it raises
            :class:`~precodec.errors.DecompressionLimitError` (checked against the
            frame header first, then while decoding).
        prefix : bytes
            Bytes already read from ``src`` (e.g. to sniff the format).

        Returns
        -------
        dict
            ``{"read": compressed bytes, "written": decompressed bytes, "frames": n}``.

        Examples
        --------
        >>> import io
        >>> z = ZstdCodec(); out = io.BytesIO()
        >>> z.decode_stream(io.BytesIO(z.encode(b"x" * 10)), out)["written"]
        10
        """
        if max_output_size < 0:
            raise OptionError(f"max_output_size={max_output_size!r} must be >= 0")
        d = self._dict(dictionary)
        have = 0 if d is None else int(d.dict_id())
        declared = [0]

        def check(h: FrameHeader) -> None:
            if h.skippable:
                return
            if h.dict_id and d is None:
                raise DictionaryError(
                    f"the Zstd frame at byte {h.offset} needs dictionary id {h.dict_id}, and no dictionary was "
                    f"given (pass dictionary= / --dict FILE; stock zstd: -D FILE)")
            if h.dict_id and have and h.dict_id != have:
                raise DictionaryError(
                    f"wrong dictionary: the Zstd frame at byte {h.offset} needs dictionary id {h.dict_id}, "
                    f"the dictionary given has id {have}")
            if h.window_size > 1 << MAX_WINDOW_LOG:
                raise CorruptStreamError(
                    f"the Zstd frame at byte {h.offset} asks for a {h.window_size >> 20} MiB window, more than the "
                    f"{1 << (MAX_WINDOW_LOG - 20)} MiB precodec accepts")
            if h.content_size is not None:
                declared[0] += h.content_size
                if declared[0] > max_output_size:
                    raise DecompressionLimitError(
                        f"decompressed size would exceed the limit of {max_output_size} bytes (the frame headers "
                        f"declare at least {declared[0]}); raise it with max_output_size= / --max-output")

        walker = FrameWalker(check)
        tee = _Tee(src, walker, prefix)
        written = 0
        try:
            dctx = zstandard.ZstdDecompressor(dict_data=d, max_window_size=1 << MAX_WINDOW_LOG)
            reader = dctx.stream_reader(tee, read_size=_READ, read_across_frames=True)
            while True:
                chunk = reader.read(_READ)
                if not chunk:
                    break
                written += len(chunk)
                if written > max_output_size:
                    raise DecompressionLimitError(
                        f"decompressed size exceeds the limit of {max_output_size} bytes; raise it with "
                        f"max_output_size= / --max-output")
                dst.write(chunk)
        except zstandard.ZstdError as exc:
            if tee.error is not None:
                raise tee.error from None
            msg = str(exc)
            if "ictionary" in msg:
                raise DictionaryError(f"zstd: {msg} (wrong dictionary?)") from None
            raise CorruptStreamError(f"corrupt Zstd data near byte {walker.offset}: {msg}") from None
        if tee.error is not None:
            raise tee.error
        walker.close()
        return {"read": walker.offset, "written": written, "frames": walker.frames}

    def versions(self) -> dict[str, str]:
        return {"zstandard": zstandard.__version__, "libzstd": ".".join(map(str, zstandard.ZSTD_VERSION))}
