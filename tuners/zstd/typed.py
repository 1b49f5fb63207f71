"""Typed mode (opt-in): per-column transforms before Zstd, in a versioned container only precodec reads.

**Stock zstd cannot read this output.**  It is never the default; every entry
point that writes it says so, and :func:`is_typed` / the ``PCZT`` magic let
readers tell it apart from Zstd frames.

Numeric columns (declared as numpy arrays, or row-major records with a numpy
struct layout such as ``"<u4,<i8,<f8"``, or detected from raw bytes) each get
the transform that makes them smallest on a sample, tried in front of Zstd:

* ``raw``, ``shuffle`` (byte planes);
* ``delta`` / ``delta2`` (first / second difference, modular) + zigzag + shuffle, for integers;
* ``xor`` (bit pattern XOR the previous value) + shuffle, for floats;
* ``decimal<d>``: floats that are exactly ``k / 10**d`` become integers ``k``, then delta + zigzag + shuffle.

Container, version 1 (all integers little-endian)::

    b"PCZT" | u8 version | u32 header length | header (UTF-8 JSON) | one Zstd frame per column | tail frame

The header names the layout, every column's dtype, count, transform, compressed
size and CRC-32 of its raw bytes, and carries a plain-text note that stock
zstd cannot read the file.

Example
-------
>>> import numpy as np
>>> from precodec.tuners.zstd.typed import compress_columns, decompress_typed
>>> cols = {"t": np.arange(0, 100000, 3, dtype=np.int64)}
>>> blob = compress_columns(cols)
>>> blob[:4], np.array_equal(decompress_typed(blob)["t"], cols["t"])
(b'PCZT', True)
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Mapping

import numpy as np
import zstandard

from ...errors import CorruptStreamError, DecompressionLimitError, OptionError, PrecodecError

__all__ = ["MAGIC", "VERSION", "NOTE", "is_typed", "compress_columns", "compress_typed_bytes", "decompress_typed",
           "read_header", "TRANSFORMS"]

MAGIC = b"PCZT"
VERSION = 1
NOTE = ("precodec typed container (opt-in typed mode): stock zstd cannot read this file; "
        "decode it with `precodec zstd decompress` or precodec.zstd.decompress()")
TRANSFORMS = ("raw", "shuffle", "delta", "delta2", "xor", "decimal")
_SAMPLE = 1 << 15  # elements tried per candidate


def is_typed(data: bytes) -> bool:
    """True if ``data`` starts like a precodec typed container."""
    return bytes(data[:4]) == MAGIC


def _uint(dt: np.dtype) -> np.dtype:
    return np.dtype(f"<u{dt.itemsize}")


def _shuffle(u: np.ndarray) -> bytes:
    w = u.dtype.itemsize
    if w == 1:
        return u.tobytes()
    return np.ascontiguousarray(u.view(np.uint8).reshape(-1, w).T).tobytes()


def _unshuffle(b: bytes, dt: np.dtype, n: int) -> np.ndarray:
    w = dt.itemsize
    a = np.frombuffer(b, np.uint8)
    if w == 1:
        return a.view(dt).copy()
    return np.ascontiguousarray(a.reshape(w, n).T).view(dt).reshape(n)


def _zigzag(u: np.ndarray) -> np.ndarray:
    bits = u.dtype.itemsize * 8
    s = u.view(np.dtype(f"<i{u.dtype.itemsize}"))
    return ((s << 1) ^ (s >> (bits - 1))).view(u.dtype)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    one = z.dtype.type(1)
    return (z >> one) ^ (np.zeros_like(z) - (z & one))


def _delta(u: np.ndarray) -> np.ndarray:
    d = np.empty_like(u)
    if u.size:
        d[0] = u[0]
        np.subtract(u[1:], u[:-1], out=d[1:])
    return d


def _undelta(d: np.ndarray) -> np.ndarray:
    return np.cumsum(d, dtype=d.dtype)


_MAX_PATCH = 0.001  # share of values a decimal column may carry as exceptions (-0.0, NaN, inf, odd values)


def _decimal_split(a: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, bad): integers ``k`` with ``k / 10**d == a`` bit for bit except at the ``bad`` positions (k = 0 there)."""
    with np.errstate(invalid="ignore", over="ignore"):
        k = np.rint(a.astype(np.float64) * 10.0 ** d)
        bad = ~np.isfinite(k) | (np.abs(k) >= 2 ** 53)
        k[bad] = 0
        k = k.astype(np.int64)
        back = (k / 10.0 ** d).astype(a.dtype)
    ut = _uint(a.dtype)
    bad |= back.view(ut) != a.view(ut)
    k[bad] = 0
    return k, bad


def _decimals(a: np.ndarray) -> int | None:
    """Smallest ``d`` such that (nearly) every value is exactly ``k / 10**d`` with integer ``k``, else None."""
    if a.dtype.kind != "f" or a.size == 0:
        return None
    for d in range(0, 7):
        if _decimal_split(a, d)[1].mean() <= _MAX_PATCH:
            return d
    return None


def _decimal_ok(a: np.ndarray, d: int) -> bool:
    return bool(a.size) and _decimal_split(a, d)[1].mean() <= _MAX_PATCH


def _forward(a: np.ndarray, transform: str, param: int = 0) -> bytes:
    u = a.view(_uint(a.dtype))
    if transform == "raw":
        return a.tobytes()
    if transform == "shuffle":
        return _shuffle(u)
    if transform == "delta":
        return _shuffle(_zigzag(_delta(u)))
    if transform == "delta2":
        return _shuffle(_zigzag(_delta(_delta(u))))
    if transform == "xor":
        x = u.copy()
        x[1:] ^= u[:-1]
        return _shuffle(x)
    if transform == "decimal":
        # k = x * 10**d as integers, delta + zigzag + shuffle; values that do not survive (-0.0, NaN...)
        # are patched: u32 count, u64 positions, raw values, then the planes
        k, bad = _decimal_split(a, param)
        idx = np.flatnonzero(bad).astype("<u8")
        if idx.size:  # keep deltas small around patched positions
            k[idx] = np.interp(idx, np.flatnonzero(~bad), k[~bad]).astype(np.int64) if (~bad).any() else 0
        head = len(idx).to_bytes(4, "little") + idx.tobytes() + a[idx].tobytes()
        return head + _shuffle(_zigzag(_delta(k.view(np.uint64))))
    raise OptionError(f"transform={transform!r} is not one of {list(TRANSFORMS)}")


def _inverse(b: bytes, dt: np.dtype, n: int, transform: str, param: int = 0) -> np.ndarray:
    ut = _uint(dt)
    if transform == "raw":
        return np.frombuffer(b, dt, n).copy()
    if transform == "shuffle":
        return _unshuffle(b, ut, n).view(dt)
    if transform == "delta":
        return _undelta(_unzigzag(_unshuffle(b, ut, n))).view(dt)
    if transform == "delta2":
        return _undelta(_undelta(_unzigzag(_unshuffle(b, ut, n)))).view(dt)
    if transform == "xor":
        x = _unshuffle(b, ut, n)
        return np.bitwise_xor.accumulate(x).view(dt)
    if transform == "decimal":
        npatch = int.from_bytes(b[:4], "little")
        pos = 4 + 8 * npatch
        idx = np.frombuffer(b[4:pos], "<u8").astype(np.intp)
        vals = np.frombuffer(b[pos:pos + npatch * dt.itemsize], dt)
        k = _undelta(_unzigzag(_unshuffle(b[pos + npatch * dt.itemsize:], np.dtype("<u8"), n))).view(np.int64)
        out = (k / 10.0 ** param).astype(dt)
        out[idx] = vals
        return out
    raise CorruptStreamError(f"typed container: unknown transform {transform!r}")


def _candidates(a: np.ndarray) -> list[tuple[str, int]]:
    kind = a.dtype.kind
    if kind in "iu":
        return [("raw", 0), ("shuffle", 0), ("delta", 0), ("delta2", 0)]
    if kind == "f":
        c = [("raw", 0), ("shuffle", 0), ("xor", 0), ("delta", 0)]
        d = _decimals(a[:_SAMPLE])
        if d is not None:
            c.append(("decimal", d))
        return c
    if kind == "b":
        return [("raw", 0)]
    raise OptionError(f"typed mode handles integer, float and bool columns, not dtype {a.dtype.str!r}")


AUTO_LEVELS = (1, 5, 7)  # levels tried per column when level="auto" (byte planes: 1 is usually best)


def _choose(a: np.ndarray, level: int | str) -> tuple[str, int, int, list[dict[str, Any]]]:
    """(transform, param, level, trials): the transform smallest at level 1 (or ``level``) on a sample, then,
    with ``level="auto"``, the level of :data:`AUTO_LEVELS` that shrinks that sample by more than 3%."""
    s = a[:_SAMPLE]
    lv0 = 1 if level == "auto" else int(level)
    c = zstandard.ZstdCompressor(level=lv0, write_checksum=False)
    trials = []
    for t, p in _candidates(a):
        if t == "decimal" and not _decimal_ok(a, p):  # the whole column, not just the sample
            continue
        trials.append({"transform": t, "param": p, "level": lv0,
                       "sample_bytes": len(c.compress(_forward(s, t, p)))})
    best = min(trials, key=lambda r: r["sample_bytes"])
    chosen = best
    if level == "auto":
        fw = _forward(s, best["transform"], best["param"])
        for lv in AUTO_LEVELS:
            if lv == lv0:
                continue
            n = len(zstandard.ZstdCompressor(level=lv, write_checksum=False).compress(fw))
            trials.append({"transform": best["transform"], "param": best["param"], "level": lv, "sample_bytes": n})
            if n < chosen["sample_bytes"] * 0.97:
                chosen = trials[-1]
    return chosen["transform"], chosen["param"], chosen["level"], trials


def _check_level(level: int | str) -> None:
    if level == "auto":
        return
    if isinstance(level, bool) or not isinstance(level, int) or not -7 <= level <= 22:
        raise OptionError(f"level={level!r} must be 'auto' or an integer in [-7, 22]")


def _le(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1:
        a = a.reshape(-1)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False):
        a = a.astype(a.dtype.newbyteorder("<"))
    return np.ascontiguousarray(a)


def _pack(header: dict[str, Any], payloads: list[bytes]) -> bytes:
    hb = json.dumps(header, separators=(",", ":")).encode()
    return MAGIC + bytes([VERSION]) + len(hb).to_bytes(4, "little") + hb + b"".join(payloads)


def compress_columns(columns: Mapping[str, Any], *, level: int | str = "auto", transforms: Mapping[str, str] | None = None,
                     _layout: dict[str, Any] | None = None, _tail: bytes = b"") -> bytes:
    """Compress named 1-D numeric columns into a typed container (stock zstd cannot read it).

    Parameters
    ----------
    columns : mapping of str to array-like
        Integer, float or bool 1-D arrays (never modified).
    level : int or "auto"
        Zstd level behind the transforms; ``"auto"`` (default) tries levels 1, 5 and 7 per column
        on a sample and keeps a higher one only where it is more than 3% smaller.
    transforms : mapping of str to str, optional
        Force a transform per column (``"delta"``, ``"shuffle"``...); others are chosen on a sample.

    Returns
    -------
    bytes
        The container (starts with ``b"PCZT"``).

    Examples
    --------
    >>> import numpy as np
    >>> blob = compress_columns({"x": np.zeros(1000, np.float32)})
    >>> read_header(blob)["columns"][0]["dtype"]
    '<f4'
    """
    _check_level(level)
    if not columns:
        raise OptionError("columns is empty")
    metas, payloads = [], []
    for name, arr in columns.items():
        a = _le(arr)
        forced = (transforms or {}).get(name)
        if forced is not None:
            if forced not in TRANSFORMS or forced == "decimal":
                raise OptionError(f"transforms[{name!r}]={forced!r} is not one of "
                                  f"{[t for t in TRANSFORMS if t != 'decimal']}")
            _candidates(a)  # validates the dtype
            t, p, lv, trials = forced, 0, (1 if level == "auto" else int(level)), []
        else:
            t, p, lv, trials = _choose(a, level)
        frame = zstandard.ZstdCompressor(level=lv, write_checksum=False).compress(_forward(a, t, p))
        metas.append({"name": str(name), "dtype": a.dtype.str, "count": int(a.size), "transform": t, "param": p,
                      "level": lv, "csize": len(frame), "crc32": zlib.crc32(a.tobytes()), "trials": trials})
        payloads.append(frame)
    header: dict[str, Any] = {"format": "precodec-typed-zstd", "version": VERSION, "note": NOTE,
                              "layout": _layout or {"kind": "columns"}, "level": level, "columns": metas}
    if _tail:
        tf = zstandard.ZstdCompressor(level=3, write_checksum=False).compress(_tail)
        header["tail"] = {"size": len(_tail), "csize": len(tf)}
        payloads.append(tf)
    return _pack(header, payloads)


def compress_typed_bytes(data: bytes, layout: str = "auto", *, level: int | str = "auto") -> bytes:
    """Raw bytes of row-major records (numpy struct ``layout`` like ``"<u4,<i8"``, or ``"auto"``) -> container.

    ``auto`` detects one column of 1, 2, 4 or 8-byte little-endian integers,
    keeping the width that compresses best on a sample.  Bytes left over after
    the last whole record are kept verbatim.  Decoding gives ``data`` back.

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.arange(5000, dtype="<u4").tobytes() + b"x"
    >>> decompress_typed(compress_typed_bytes(raw, "<u4")) == raw
    True
    """
    data = bytes(data)
    _check_level(level)
    detected = False
    if layout == "auto":
        detected = True
        sample = data[: 8 * _SAMPLE]
        c = zstandard.ZstdCompressor(level=1 if level == "auto" else level, write_checksum=False)
        best = None
        for w in (1, 2, 4, 8):
            n = len(sample) // w
            if n < 16:
                continue
            a = np.frombuffer(sample[: n * w], f"<u{w}")
            for t in ("shuffle", "delta", "delta2"):
                size = len(c.compress(_forward(a, t)))
                if best is None or size < best[0]:
                    best = (size, w)
        layout = f"<u{best[1]}" if best else "<u1"
    try:
        dt = np.dtype(layout)
    except TypeError:
        raise OptionError(f"layout={layout!r} is not a numpy dtype such as '<u4' or '<u4,<i8,<f8'") from None
    if dt.itemsize == 0:
        raise OptionError(f"layout={layout!r} has no bytes")
    n = len(data) // dt.itemsize
    rows = np.frombuffer(data[: n * dt.itemsize], dt)
    if dt.names:
        cols = {name: np.ascontiguousarray(rows[name]) for name in dt.names}
        if any(v.ndim != 1 for v in cols.values()):
            raise OptionError(f"layout={layout!r}: sub-array fields are not supported")
    else:
        cols = {"c0": rows}
    lay = {"kind": "rows", "dtype": dt.descr if dt.names else dt.str, "rows": int(n), "detected": detected}
    return compress_columns(cols, level=level, _layout=lay, _tail=data[n * dt.itemsize:])


def read_header(data: bytes) -> dict[str, Any]:
    """The JSON header of a typed container (raises CorruptStreamError if it is not one)."""
    if not is_typed(data):
        raise CorruptStreamError("not a precodec typed container (no PCZT magic)")
    if len(data) < 9:
        raise CorruptStreamError("truncated typed container (header cut)")
    if data[4] != VERSION:
        raise CorruptStreamError(f"typed container version {data[4]} is not supported by this precodec "
                                 f"(reads version {VERSION}); upgrade precodec")
    hl = int.from_bytes(data[5:9], "little")
    if 9 + hl > len(data):
        raise CorruptStreamError("truncated typed container (header cut)")
    try:
        h = json.loads(data[9:9 + hl])
        h["_payload"] = 9 + hl
        return h
    except ValueError:
        raise CorruptStreamError("corrupt typed container header") from None


def decompress_typed(data: bytes, *, max_output_size: int = 1 << 31) -> Any:
    """Decode a typed container: a dict of columns (``kind: columns``) or the original bytes (``kind: rows``).

    Raises
    ------
    CorruptStreamError
        Truncated, corrupt (CRC-32 mismatch) or of an unknown version.
    DecompressionLimitError
        The declared size exceeds ``max_output_size``.
    """
    h = read_header(data)
    try:
        return _decode(data, h, max_output_size)
    except PrecodecError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # the JSON header parsed but its fields are mangled (a flipped byte can keep it valid JSON)
        raise CorruptStreamError(f"corrupt typed container header ({type(exc).__name__}: {exc})") from None


def _declared_at_most(frame: bytes, limit: int) -> None:
    """A frame whose header declares more than ``limit`` bytes is corrupt (zstandard would allocate it whole)."""
    declared = zstandard.frame_content_size(frame)
    if declared > limit:
        raise ValueError(f"the frame declares {declared} bytes, more than the {limit} the header allows")


def _decode(data: bytes, h: dict[str, Any], max_output_size: int) -> Any:
    try:
        cols_meta = h["columns"]
        total = sum(int(m["count"]) * np.dtype(m["dtype"]).itemsize for m in cols_meta) + \
            int(h.get("tail", {}).get("size", 0))
        sizes = [int(m["count"]) for m in cols_meta] + [int(m["csize"]) for m in cols_meta] + \
            [int(h["tail"][k]) for k in ("size", "csize") if "tail" in h]
    except (KeyError, TypeError, ValueError):
        raise CorruptStreamError("corrupt typed container header") from None
    if min(sizes, default=0) < 0:
        raise CorruptStreamError("corrupt typed container header (a negative size)")
    if total > max_output_size:
        raise DecompressionLimitError(
            f"typed container declares {total} bytes, above the limit of {max_output_size}; raise max_output_size")
    d = zstandard.ZstdDecompressor()
    pos = h["_payload"]
    out: dict[str, np.ndarray] = {}
    for m in cols_meta:
        frame = data[pos:pos + m["csize"]]
        if len(frame) != m["csize"]:
            raise CorruptStreamError(f"truncated typed container (column {m['name']!r} cut)")
        pos += m["csize"]
        dt = np.dtype(m["dtype"])
        # the largest transformed column: "decimal" with every value patched (u32 count, then per value a u64
        # position, the raw value and a u64 plane word)
        bound = int(m["count"]) * (16 + dt.itemsize) + 68
        try:
            _declared_at_most(frame, bound)
            raw = d.decompress(frame, max_output_size=bound)
            a = _inverse(raw, dt, int(m["count"]), m["transform"], int(m.get("param", 0)))
        except (zstandard.ZstdError, ValueError) as exc:
            raise CorruptStreamError(f"corrupt typed container (column {m['name']!r}): {exc}") from None
        if zlib.crc32(a.tobytes()) != m["crc32"]:
            raise CorruptStreamError(f"corrupt typed container: column {m['name']!r} fails its CRC-32")
        out[m["name"]] = a
    tail = b""
    if "tail" in h:
        frame = data[pos:pos + h["tail"]["csize"]]
        try:
            _declared_at_most(frame, int(h["tail"]["size"]) + 64)
            tail = d.decompress(frame, max_output_size=h["tail"]["size"] + 64)
        except (zstandard.ZstdError, ValueError) as exc:
            raise CorruptStreamError(f"corrupt typed container (tail): {exc}") from None
        pos += h["tail"]["csize"]
    if pos != len(data):
        raise CorruptStreamError(f"typed container has {len(data) - pos} unexpected trailing bytes")
    lay = h.get("layout", {})
    if lay.get("kind") != "rows":
        return out
    dd = lay["dtype"]
    dt = np.dtype([tuple(x) for x in dd]) if isinstance(dd, list) else np.dtype(dd)
    if int(lay["rows"]) * dt.itemsize != total - len(tail):
        raise CorruptStreamError("corrupt typed container header (row count does not match the columns)")
    rows = np.empty(int(lay["rows"]), dt)
    if dt.names:
        for name in dt.names:
            rows[name] = out[name]
    else:
        rows[:] = out["c0"]
    return rows.tobytes() + tail
