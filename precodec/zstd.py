"""Zstd in precodec: trained dictionaries, budget-driven settings, standard frames out.

Everything written here, except the opt-in typed mode, is a sequence of
standard Zstd frames that an unmodified ``zstd -d`` decodes (``-D dict`` where
a dictionary was used).  Three ways to choose the settings:

* a plain ``level`` (and ``long_distance`` / ``window_log`` / ``checksum``);
* a ``budget`` (:class:`BudgetSpec`: ``"compress>=200MB/s"``, ``"decompress>=1GB/s"``,
  ``"time<=2x:level3"``, ``"ratio>=4"``, ``"max-ratio"``), predicted from cheap
  features and held by measuring as it goes;
* record mode: many small records with a dictionary trained for them
  (:func:`train_dictionary`, :func:`compress_records`).

Typed mode (:func:`compress_typed`) transforms numeric columns before Zstd and
writes a versioned container (magic ``PCZT``) that **only precodec decodes**.

Example
-------
>>> import precodec.zstd as pz
>>> blob = pz.compress(b"hello world " * 1000, level=19)
>>> pz.decompress(blob)[:11]
b'hello world'
>>> recs = [b'{"id":%d,"op":"read","ok":true}\\n' % i for i in range(2000)]
>>> td = pz.train_dictionary(recs, sizes=(1024,), levels=(3,))
>>> pz.decompress(pz.compress_records(recs, td.data), dictionary=td.data) == b"".join(recs)
True
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO, Mapping, Sequence

from .errors import OptionError
from .plugins.zstd import (
    DEFAULT_MAX_OUTPUT,
    MAX_WINDOW_LOG,
    FrameWalker,
    ZstdCodec,
    as_dictionary,
    dictionary_id,
)
from .tuners.zstd.budget import BudgetSpec, compress_budget
from .tuners.zstd.records import (
    DriftReport,
    TrainedDictionary,
    compress_records,
    decompress_records,
    drift_report,
    iter_records,
    read_header,
    split_records,
    train_dictionary,
)
from .tuners.zstd.typed import compress_columns, compress_typed_bytes, decompress_typed, is_typed
from .tuners.zstd.typed import read_header as read_typed_header

__all__ = [
    "BudgetSpec",
    "TrainedDictionary",
    "DriftReport",
    "DEFAULT_MAX_OUTPUT",
    "compress",
    "decompress",
    "compress_stream",
    "decompress_stream",
    "train_dictionary",
    "drift_report",
    "split_records",
    "iter_records",
    "compress_records",
    "decompress_records",
    "compress_typed",
    "decompress_typed",
    "inspect",
    "load_dictionary",
    "records_stream",
    "MAX_WINDOW_LOG",
]

_codec = ZstdCodec()


def load_dictionary(path: str | os.PathLike[str]) -> bytes:
    """Read a dictionary file (as written by ``precodec zstd train`` or ``zstd --train``).

    Raises
    ------
    DictionaryError
        The file is empty.
    """
    with open(path, "rb") as f:
        data = f.read()
    as_dictionary(data)  # validates
    return data


def _level_params(level: int | None, long_distance: bool, window_log: int, checksum: bool) -> dict[str, Any]:
    return {"level": 3 if level is None else level, "long_distance": long_distance, "window_log": window_log,
            "checksum": checksum}


def compress(data: bytes, *, level: int | None = None, budget: str | BudgetSpec | None = None,
             dictionary: Any = None, long_distance: bool = False, window_log: int = 0,
             checksum: bool = True) -> bytes:
    """Compress ``data`` into standard Zstd frames.

    Parameters
    ----------
    data : bytes
    level : int, optional
        Zstd level (-7..22; default 3).  Mutually exclusive with ``budget``.
    budget : str or BudgetSpec, optional
        Let precodec choose the settings for this budget.
    dictionary : bytes, optional
        A trained dictionary (``zstd -D`` of it decodes the output).
    long_distance : bool
        Long-distance matching (window log 27 unless ``window_log`` says otherwise).
    window_log : int
        0 for the level's default, else 10..27.
    checksum : bool
        Content checksum in the frame.

    Returns
    -------
    bytes

    Examples
    --------
    >>> len(compress(b"a" * 10000, budget="ratio>=50")) < 200
    True
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise OptionError(f"data must be bytes, got {type(data).__name__!r}")
    out = io.BytesIO()
    compress_stream(io.BytesIO(bytes(data)), out, level=level, budget=budget, dictionary=dictionary,
                    long_distance=long_distance, window_log=window_log, checksum=checksum, size=len(data))
    return out.getvalue()


def compress_stream(src: BinaryIO, dst: BinaryIO, *, level: int | None = None,
                    budget: str | BudgetSpec | None = None, dictionary: Any = None, long_distance: bool = False,
                    window_log: int = 0, checksum: bool = True, size: int = -1,
                    progress: Any = None) -> dict[str, Any]:
    """Compress a stream with bounded memory; return a decision record (what was chosen and measured).

    Examples
    --------
    >>> rec = compress_stream(io.BytesIO(b"x" * 5000), io.BytesIO(), level=1)
    >>> rec["mode"], rec["read"]
    ('level', 5000)
    """
    if level is not None and budget is not None:
        raise OptionError("level and budget are mutually exclusive: give one")
    if budget is not None:
        if dictionary is not None or long_distance or window_log:
            raise OptionError("budget chooses the settings: do not combine it with dictionary, long_distance "
                              "or window_log")
        spec = budget if isinstance(budget, BudgetSpec) else BudgetSpec.parse(budget)
        return compress_budget(src, dst, spec, size=size, checksum=checksum, progress=progress)
    import time

    params = _level_params(level, long_distance, window_log, checksum)
    t0 = time.perf_counter()
    r, w = _codec.encode_stream(src, dst, params, dictionary=dictionary, size=size)
    dt = time.perf_counter() - t0
    if progress is not None:
        progress(r, size)
    return {"mode": "level", "params": params, "dict_id": dictionary_id(dictionary), "read": r, "written": w,
            "ratio": r / max(w, 1), "seconds": dt, "speed_MBps": r / max(dt, 1e-9) / 1e6, "frames": 1}


def decompress(data: bytes, *, dictionary: Any = None, max_output_size: int = DEFAULT_MAX_OUTPUT) -> Any:
    """Decompress Zstd frames (or a precodec typed container).

    Returns bytes, except for a typed container made from named columns,
    which gives back the dict of numpy arrays.

    Raises
    ------
    CorruptStreamError
        Not Zstd, truncated, or corrupt.
    DictionaryError
        A needed dictionary is missing or another one was given (ids named).
    DecompressionLimitError
        Output beyond ``max_output_size`` bytes.

    Examples
    --------
    >>> decompress(compress(b"abc"))
    b'abc'
    """
    data = bytes(data)
    if is_typed(data):
        return decompress_typed(data, max_output_size=max_output_size)
    return _codec.decode(data, dictionary=dictionary, max_output_size=max_output_size)


def decompress_stream(src: BinaryIO, dst: BinaryIO, *, dictionary: Any = None,
                      max_output_size: int = DEFAULT_MAX_OUTPUT) -> dict[str, Any]:
    """Decompress a stream with bounded memory (typed containers are read whole); return what was done.

    Examples
    --------
    >>> out = io.BytesIO()
    >>> decompress_stream(io.BytesIO(compress(b"abc")), out)["written"], out.getvalue()
    (3, b'abc')
    """
    head = src.read(4)
    if head == b"PCZT":
        data = head + src.read()
        res = decompress_typed(data, max_output_size=max_output_size)
        if not isinstance(res, (bytes, bytearray)):
            raise OptionError("this typed container holds named columns: read it with precodec.zstd.decompress()")
        dst.write(res)
        return {"mode": "typed", "read": len(data), "written": len(res), "frames": 0}
    st = _codec.decode_stream(src, dst, dictionary=dictionary, max_output_size=max_output_size, prefix=head)
    st["mode"] = "zstd"
    return st


def compress_typed(data: Any, *, layout: str = "auto", level: int | str = "auto",
                   transforms: Mapping[str, str] | None = None) -> bytes:
    """Typed mode (opt-in): **the output is not a Zstd frame; stock zstd cannot read it.**

    Parameters
    ----------
    data : bytes or mapping of str to numpy array
        Raw row-major records (with ``layout``, a numpy dtype such as ``"<u4"`` or
        ``"<u4,<i8,<f8"``, or ``"auto"`` to detect one integer column), or named columns.
    layout : str
        For bytes input.
    level : int or "auto"
        Zstd level behind the transforms (default ``"auto"``: chosen per column among 1, 5, 7).
    transforms : mapping, optional
        Force transforms per column (columns input).

    Examples
    --------
    >>> import numpy as np
    >>> blob = compress_typed({"n": np.arange(1000)})
    >>> blob[:4], int(decompress(blob)["n"][-1])
    (b'PCZT', 999)
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        if transforms:
            raise OptionError("transforms apply to named columns; with bytes give a layout")
        return compress_typed_bytes(bytes(data), layout, level=level)
    if isinstance(data, Mapping):
        return compress_columns(data, level=level, transforms=transforms)
    raise OptionError(f"typed mode takes bytes or a mapping of columns, got {type(data).__name__!r}")


def inspect(data: bytes) -> dict[str, Any]:
    """Describe Zstd frames, a precodec typed container or a Zstd dictionary without decoding.

    Examples
    --------
    >>> inspect(compress(b"abc" * 100))["frames"]
    1
    """
    data = bytes(data)
    if is_typed(data):
        h = read_typed_header(data)
        h.pop("_payload", None)
        for c in h.get("columns", []):
            c.pop("trials", None)
        return {"kind": "precodec typed container", "stock_zstd_readable": False, **h}
    if data[:4] == b"\x37\xa4\x30\xec":
        return {"kind": "zstd dictionary", "dict_id": dictionary_id(data), "size": len(data)}
    w = FrameWalker(keep=4)
    w.feed(data)
    w.close()
    first = next((h for h in w.headers if not h.skippable), None)
    info: dict[str, Any] = {"kind": "zstd frames", "stock_zstd_readable": True, "frames": w.frames,
                            "skippable_frames": w.skippable, "compressed_size": len(data)}
    if first is not None:
        info.update(dict_id=first.dict_id, content_size_first_frame=first.content_size,
                    window_size=first.window_size, checksum=first.checksum)
    meta = read_header(data)
    if meta is not None:
        info["precodec"] = meta
    return info


def records_stream(src: BinaryIO, dst: BinaryIO, *, framing: str = "lines", dictionary: Any = None,
                   level: int | None = None, group: int | str = 1, checksum: bool = False,
                   train_bytes: int = 8 << 20, header: Mapping[str, Any] | None = None,
                   sizes: Sequence[int] | None = None, levels: Sequence[int] | None = None,
                   progress: Any = None) -> tuple[dict[str, Any], TrainedDictionary | None]:
    """Record mode on a stream: train on the first ``train_bytes`` (unless ``dictionary``), then compress every record.

    ``group`` records go in each frame (1: each record decodable alone; ``"auto"``:
    the smallest group within 20% of the one-stream ratio on the training sample).
    Returns (decision record, the trained dictionary or None).  Memory is bounded
    by ``train_bytes`` plus one read chunk.
    """
    import time

    from .tuners.zstd.records import DEFAULT_LEVELS, DEFAULT_SIZES, _header_frame, choose_group, record_compressor

    t0 = time.perf_counter()
    it = iter_records(src, framing)
    head: list[bytes] = []
    td: TrainedDictionary | None = None
    if dictionary is None:
        n = 0
        for r in it:
            head.append(r)
            n += len(r)
            if n >= train_bytes:
                break
        td = train_dictionary(head, sizes=sizes or DEFAULT_SIZES, levels=levels or DEFAULT_LEVELS)
        dictionary = td.data
        if level is None:
            level = td.level
    level = 3 if level is None else level
    if group == "auto":
        if td is not None:
            group = int(td.heldout["group_80"])
        else:
            for r in it:
                head.append(r)
                if sum(map(len, head)) >= train_bytes:
                    break
            group = choose_group(head, dictionary, level=level)[0] if len(head) >= 20 else 1
    if not isinstance(group, int) or group < 1:
        raise OptionError(f"group={group!r} must be a positive integer or 'auto'")
    did = dictionary_id(dictionary)
    meta = {"mode": "records", "framing": framing, "group": group, "level": level, "dict_id": did,
            **(dict(header) if header else {})}
    written = dst.write(_header_frame(meta)) or 0
    c = record_compressor(dictionary, level=level, checksum=checksum)
    read = nrec = frames = 0
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal written, frames
        if batch:
            written += dst.write(c.compress(b"".join(batch))) or 0
            frames += 1
            batch.clear()

    import itertools

    for r in itertools.chain(head, it):
        batch.append(r)
        read += len(r)
        nrec += 1
        if len(batch) >= group:
            flush()
            if progress is not None and nrec % 10000 == 0:
                progress(read, -1)
    flush()
    dt = time.perf_counter() - t0
    rec = {"mode": "records", "framing": framing, "level": level, "group": group, "dict_id": did,
           "records": nrec, "frames": frames, "read": read, "written": written, "ratio": read / max(written, 1),
           "seconds": dt, "speed_MBps": read / max(dt, 1e-9) / 1e6}
    if td is not None:
        rec["dictionary"] = td.summary()
    return rec, td

