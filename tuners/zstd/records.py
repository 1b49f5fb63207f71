"""Record mode: trained Zstd dictionaries for many small records, standard frames out.

Records (JSON lines, log lines, or any framing the user names) are split
keeping their separators, so that concatenating the decompressed frames gives
back the input byte for byte and ``zstd -d -D the.dict`` does exactly that.

:func:`train_dictionary` trains candidate dictionaries of several sizes on
the first part of the records, compresses the held-out rest record by record
at several levels, and keeps the (size, level) pair with the best held-out
ratio (a cheaper pair within ``tolerance`` of it wins); the shipped dictionary
is then retrained on all records at that size.  Its id is derived from its
content (a private-range id, 2 bytes in the frame header).
:func:`drift_report` says how much an existing dictionary lost against a fresh
one on new records.

Example
-------
>>> from precodec.tuners.zstd.records import train_dictionary, compress_records, decompress_records
>>> recs = [b'{"id": %d, "status": "ok", "user": "u%04d"}\\n' % (i, i % 97) for i in range(3000)]
>>> td = train_dictionary(recs, sizes=(1024, 2048), levels=(3,))
>>> blob = compress_records(recs, td.data, level=td.level)
>>> decompress_records(blob, td.data) == recs
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import zstandard

from ...errors import DictionaryError, OptionError
from ...plugins.zstd import FrameWalker, as_dictionary, skippable_frame

__all__ = [
    "DEFAULT_SIZES",
    "DEFAULT_LEVELS",
    "TrainedDictionary",
    "DriftReport",
    "parse_framing",
    "split_records",
    "iter_records",
    "train_dictionary",
    "record_compressor",
    "compress_records",
    "decompress_records",
    "measure",
    "drift_report",
    "choose_group",
    "HEADER_TAG",
]

#: dictionary sizes tried by default (bytes)
DEFAULT_SIZES = (2048, 4096, 8192, 16384, 32768, 65536, 112640)
#: levels tried by default
DEFAULT_LEVELS = (1, 3, 6, 9, 12, 19)
#: first bytes of the JSON in precodec's skippable metadata frame
HEADER_TAG = b"precodec-zstd-records"
_MIN_ID = 32768  # ids below are reserved for a future registrar (zstd format spec)


def parse_framing(framing: str) -> bytes | str:
    """``"lines"`` -> ``b"\\n"``, ``"nul"`` -> ``b"\\0"``, ``"sep:<text>"`` (backslash escapes allowed), ``"len32"``.

    Examples
    --------
    >>> parse_framing("lines"), parse_framing("sep:\\\\r\\\\n"), parse_framing("len32")
    (b'\\n', b'\\r\\n', 'len32')
    """
    if framing in ("lines", "jsonl", "json"):
        return b"\n"
    if framing == "nul":
        return b"\0"
    if framing == "len32":
        return "len32"
    if framing.startswith("sep:") and len(framing) > 4:
        try:
            return framing[4:].encode("latin-1").decode("unicode_escape").encode("latin-1")
        except (UnicodeError, ValueError):
            pass
    raise OptionError(f"framing={framing!r} is not one of 'lines', 'jsonl', 'nul', 'len32', 'sep:<separator>'")


def split_records(data: bytes, framing: str = "lines") -> list[bytes]:
    """Split ``data`` into records, each keeping its separator (or length prefix).

    Examples
    --------
    >>> split_records(b"a\\nbb\\nccc")
    [b'a\\n', b'bb\\n', b'ccc']
    """
    sep = parse_framing(framing)
    if sep == "len32":
        out, i, n = [], 0, len(data)
        while i < n:
            if i + 4 > n:
                raise OptionError(f"len32 framing: {n - i} stray bytes at offset {i}")
            k = int.from_bytes(data[i:i + 4], "little")
            if i + 4 + k > n:
                raise OptionError(f"len32 framing: record at offset {i} claims {k} bytes, only {n - i - 4} left")
            out.append(data[i:i + 4 + k])
            i += 4 + k
        return out
    assert isinstance(sep, bytes)
    parts = data.split(sep)
    out = [p + sep for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def iter_records(f: Any, framing: str = "lines", *, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Records of a binary file object, read in ``chunk`` pieces (bounded memory for huge files)."""
    sep = parse_framing(framing)
    buf = b""
    while True:
        data = f.read(chunk)
        if not data:
            break
        buf += data
        if sep == "len32":
            i = 0
            while len(buf) - i >= 4:
                k = int.from_bytes(buf[i:i + 4], "little")
                if len(buf) - i < 4 + k:
                    break
                yield buf[i:i + 4 + k]
                i += 4 + k
            buf = buf[i:]
        else:
            assert isinstance(sep, bytes)
            parts = buf.split(sep)
            for p in parts[:-1]:
                yield p + sep
            buf = parts[-1]
    if buf:
        if sep == "len32":
            raise OptionError(f"len32 framing: {len(buf)} bytes left over at the end")
        yield buf


@dataclass
class TrainedDictionary:
    """A trained dictionary with the level chosen for it and what was measured on held-out records.

    ``data`` is a standard Zstd dictionary file: ``zstd -D`` reads it.
    """

    data: bytes
    dict_id: int
    level: int
    record_type: str = ""
    records: int = 0
    train_seconds: float = 0.0
    heldout: dict[str, float] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (without the dictionary bytes)."""
        d = asdict(self)
        d.pop("data")
        d.update(size=self.size, sha256=self.sha256)
        return d

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the dictionary file atomically (a plain Zstd dictionary)."""
        from ...io import atomic_write

        atomic_write(path, self.data)


def _set_dict_id(data: bytes) -> tuple[bytes, int]:
    """Give a trained dictionary a content-derived id in the private range (2 bytes in frame headers)."""
    if len(data) < 8 or data[:4] != b"\x37\xa4\x30\xec":
        return data, 0
    body = data[:4] + b"\0\0\0\0" + data[8:]
    did = _MIN_ID + int.from_bytes(hashlib.sha256(body).digest()[:4], "little") % (65536 - _MIN_ID)
    return data[:4] + did.to_bytes(4, "little") + data[8:], did


def _train(size: int, samples: Sequence[bytes], level: int) -> bytes:
    try:
        # fixed cover parameters: 10x faster than zstd's k/d search, same held-out ratio in our tests
        d = zstandard.train_dictionary(size, list(samples), k=1024, d=8, level=level, threads=1)
    except zstandard.ZstdError as exc:
        raise DictionaryError(
            f"dictionary training failed at size {size} on {len(samples)} records "
            f"({sum(map(len, samples))} bytes): {exc}") from None
    return _set_dict_id(d.as_bytes())[0]


def record_compressor(dictionary: Any, *, level: int = 3, checksum: bool = False) -> zstandard.ZstdCompressor:
    """A compressor for small records: dictionary id and content size in every frame, checksum optional."""
    return zstandard.ZstdCompressor(level=level, dict_data=as_dictionary(dictionary), write_checksum=checksum,
                                    write_content_size=True, write_dict_id=True)


def _grouped(records: Sequence[bytes], group: int) -> Iterator[bytes]:
    if group == 1:
        yield from records
    else:
        for i in range(0, len(records), group):
            yield b"".join(records[i:i + group])


def measure(records: Sequence[bytes], dictionary: Any = None, *, level: int = 3, group: int = 1) -> float:
    """Ratio of ``records`` compressed ``group`` records per frame (no checksum) with ``dictionary``."""
    c = record_compressor(dictionary, level=level)
    raw = sum(map(len, records))
    comp = sum(len(c.compress(r)) for r in _grouped(records, group))
    return raw / max(comp, 1)


def one_stream_ratio(records: Sequence[bytes], *, level: int = 3) -> float:
    """Ratio of all records in one frame (the upper bound record mode is judged against)."""
    raw = b"".join(records)
    return len(raw) / len(zstandard.ZstdCompressor(level=level).compress(raw))


def choose_group(records: Sequence[bytes], dictionary: Any, *, level: int = 3, share: float = 0.8,
                 groups: Iterable[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256)) -> tuple[int, dict[int, float]]:
    """Smallest records-per-frame whose ratio reaches ``share`` of the one-stream ratio (else the largest tried).

    Per-record frames keep every record decodable alone; small groups keep
    random access cheap while getting close to the ratio of one stream.

    Returns
    -------
    (group, {group: ratio})

    Examples
    --------
    >>> recs = [b"GET /item/%d HTTP/1.1 200\\n" % i for i in range(3000)]
    >>> g, ratios = choose_group(recs, None, level=3)
    >>> g > 1 and ratios[g] >= 0.8 * one_stream_ratio(recs, level=3)
    True
    """
    if not 0 < share <= 1:
        raise OptionError(f"share={share!r} must be in (0, 1]")
    target = share * one_stream_ratio(records, level=level)
    ratios: dict[int, float] = {}
    gs = sorted(int(g) for g in groups)
    for g in gs:
        ratios[g] = measure(records, dictionary, level=level, group=g)
        if ratios[g] >= target:
            return g, ratios
    return gs[-1], ratios


def _validate_levels(levels: Iterable[int]) -> tuple[int, ...]:
    out = tuple(int(x) for x in levels)
    if not out or any(not -7 <= x <= 22 for x in out):
        raise OptionError(f"levels={levels!r} must be a non-empty list of levels in -7..22")
    return out


def train_dictionary(records: Sequence[bytes], *, sizes: Iterable[int] = DEFAULT_SIZES,
                     levels: Iterable[int] = DEFAULT_LEVELS, holdout: float = 0.2, tolerance: float = 0.01,
                     record_type: str = "", max_train_records: int = 100_000) -> TrainedDictionary:
    """Train a dictionary for ``records``, choosing its size together with the level on a held-out split.

    Parameters
    ----------
    records : sequence of bytes
        Sample records, in their natural (time) order; the last ``holdout`` share is held out.
    sizes : iterable of int
        Candidate dictionary sizes in bytes; sizes above a quarter of the training bytes are skipped.
    levels : iterable of int
        Candidate levels.
    holdout : float
        Share of records held out for choosing (0.05..0.5).
    tolerance : float
        A lower level or smaller dictionary within this relative ratio of the best is preferred.
    record_type : str
        Label stored in the result.
    max_train_records : int
        Cap on records used for training (evenly subsampled).

    Returns
    -------
    TrainedDictionary

    Raises
    ------
    DictionaryError
        Too few records or bytes to train anything.

    Examples
    --------
    >>> recs = [b"GET /item/%d HTTP/1.1 200 %d\\n" % (i, i * 7 % 1000) for i in range(2000)]
    >>> td = train_dictionary(recs, sizes=(1024,), levels=(1, 3))
    >>> td.heldout["ratio"] > td.heldout["nodict_ratio"]
    True
    """
    if not 0.05 <= holdout <= 0.5:
        raise OptionError(f"holdout={holdout!r} must be in [0.05, 0.5]")
    levels_t = _validate_levels(levels)
    sizes_t = tuple(sorted({int(s) for s in sizes}))
    if not sizes_t or sizes_t[0] < 256:
        raise OptionError(f"sizes={sizes!r} must be dictionary sizes of at least 256 bytes")
    records = [bytes(r) for r in records if r]
    if len(records) < 20:
        raise DictionaryError(f"need at least 20 non-empty records to train a dictionary, got {len(records)}")
    t0 = time.perf_counter()
    n_ho = max(5, int(len(records) * holdout))
    train, held = records[:-n_ho], records[-n_ho:]
    if len(held) > 2000:  # enough to rank candidates; keeps level 19 trials cheap
        held = held[-2000:]
    if len(train) > max_train_records:
        step = len(train) / max_train_records
        train = [train[int(i * step)] for i in range(max_train_records)]
    train_bytes = sum(map(len, train))
    usable = [s for s in sizes_t if s <= train_bytes // 4] or ([sizes_t[0]] if sizes_t[0] <= train_bytes // 2 else [])
    if not usable:
        raise DictionaryError(
            f"too little data to train: {len(train)} training records, {train_bytes} bytes; the smallest "
            f"dictionary asked for ({sizes_t[0]} bytes) needs at least {2 * sizes_t[0]} bytes of records")
    ref_level = 3 if 3 in levels_t else levels_t[0]
    # stage 1: rank the sizes at a reference level; stage 2: every level on the two best sizes
    trained: dict[int, bytes] = {}
    cands: list[dict[str, Any]] = []
    for size in usable:
        try:
            trained[size] = _train(size, train, ref_level)
        except DictionaryError:
            continue
        cands.append({"size": size, "level": ref_level, "ratio": measure(held, trained[size], level=ref_level)})
    top = sorted(cands, key=lambda c: -c["ratio"])[:2]
    for c in top:
        for lv in levels_t:
            if lv != ref_level:
                cands.append({"size": c["size"], "level": lv,
                              "ratio": measure(held, trained[c["size"]], level=lv)})
    if not cands:
        raise DictionaryError(f"dictionary training failed for every size in {list(usable)}")
    best = max(c["ratio"] for c in cands)
    # cheapest acceptable: lowest level first, then smallest dictionary
    ok = [c for c in cands if c["ratio"] >= best * (1 - tolerance)]
    choice = min(ok, key=lambda c: (c["level"], c["size"]))
    final = _train(choice["size"], records if len(records) <= max_train_records else train, choice["level"])
    did = int.from_bytes(final[4:8], "little")
    g80, gratios = choose_group(held, final, level=choice["level"])
    heldout = {
        "ratio": choice["ratio"],
        "nodict_ratio": measure(held, None, level=choice["level"]),
        "one_stream_ratio": one_stream_ratio(held, level=choice["level"]),
        "group_80": g80,  # smallest records-per-frame within 20% of one stream (measured with the final dict)
        "group_80_ratio": gratios[g80],
        "records": len(held),
        "bytes": sum(map(len, held)),
    }
    return TrainedDictionary(final, did, choice["level"], record_type, len(records), time.perf_counter() - t0,
                             heldout, cands)


def _header_frame(meta: dict[str, Any]) -> bytes:
    return skippable_frame(HEADER_TAG + b" " + json.dumps(meta, separators=(",", ":")).encode(), variant=0xC)


def read_header(data: bytes) -> dict[str, Any] | None:
    """precodec's metadata from the leading skippable frame of a record-mode file, if any."""
    if len(data) >= 8 and data[1:4] == b"\x2a\x4d\x18" and data[0] & 0xF0 == 0x50:
        size = int.from_bytes(data[4:8], "little")
        payload = data[8:8 + size]
        if payload.startswith(HEADER_TAG + b" "):
            try:
                return json.loads(payload[len(HEADER_TAG) + 1:])
            except ValueError:
                return None
    return None


def compress_records(records: Iterable[bytes], dictionary: Any, *, level: int = 3, group: int = 1,
                     checksum: bool = False, header: dict[str, Any] | None = None) -> bytes:
    """Records -> concatenated standard Zstd frames, ``group`` records per frame.

    ``zstd -d -D dict`` of the result is the concatenation of the records.  A
    ``header`` dict, if given, goes first in a skippable frame (ignored by
    every Zstd decoder; :func:`read_header` reads it).

    Examples
    --------
    >>> blob = compress_records([b"a\\n", b"b\\n"], None)
    >>> decompress_records(blob, None)
    [b'a\\n', b'b\\n']
    """
    if group < 1:
        raise OptionError(f"group={group!r} must be >= 1")
    c = record_compressor(dictionary, level=level, checksum=checksum)
    out = [_header_frame(header)] if header is not None else []
    batch: list[bytes] = []
    for r in records:
        batch.append(r)
        if len(batch) == group:
            out.append(c.compress(b"".join(batch)))
            batch = []
    if batch:
        out.append(c.compress(b"".join(batch)))
    return b"".join(out)


def decompress_records(data: bytes, dictionary: Any, *, max_output_size: int = 1 << 31) -> list[bytes]:
    """Frames -> one bytes object per frame (records, or groups of records), in order.

    Frame boundaries come from the frame walker, so dictionary and size checks
    apply as in :meth:`precodec.plugins.zstd.ZstdCodec.decode`.
    """
    from ...plugins.zstd import ZstdCodec

    starts: list[int] = []
    w = FrameWalker(lambda h: None if h.skippable else starts.append(h.offset))
    w.feed(data)
    w.close()
    codec = ZstdCodec()
    ends = starts[1:] + [len(data)]
    # skippable frames between data frames would sit inside [start, end): decode_stream skips them
    out, total = [], 0
    import io

    for s, e in zip(starts, ends):
        buf = io.BytesIO()
        codec.decode_stream(io.BytesIO(data[s:e]), buf, dictionary=dictionary,
                            max_output_size=max_output_size - total)
        v = buf.getvalue()
        total += len(v)
        out.append(v)
    return out


@dataclass
class DriftReport:
    """How the current dictionary does on new records against a fresh one (same level)."""

    current_ratio: float
    fresh_ratio: float
    nodict_ratio: float
    level: int
    records: int
    fresh: TrainedDictionary | None = None

    @property
    def loss(self) -> float:
        """Relative size increase of the current dictionary's output over the fresh one's (0.1 = 10% larger)."""
        return self.fresh_ratio / self.current_ratio - 1 if self.current_ratio else float("inf")

    def summary(self) -> dict[str, Any]:
        return {"current_ratio": self.current_ratio, "fresh_ratio": self.fresh_ratio,
                "nodict_ratio": self.nodict_ratio, "loss": self.loss, "level": self.level,
                "records": self.records,
                "fresh_dictionary": self.fresh.summary() if self.fresh else None}


def drift_report(dictionary: Any, records: Sequence[bytes], *, level: int = 3, holdout: float = 0.2,
                 sizes: Iterable[int] | None = None) -> DriftReport:
    """Compare ``dictionary`` with one freshly trained on ``records`` (judged on their held-out tail).

    Examples
    --------
    >>> old = [b"GET /item/%d HTTP/1.1 200\\n" % i for i in range(2000)]
    >>> new = [b'{"op": "put", "key": "k%d", "ok": true}\\n' % i for i in range(2000)]
    >>> td = train_dictionary(old, sizes=(1024,), levels=(3,))
    >>> drift_report(td.data, new, sizes=(1024,)).loss > 0.2
    True
    """
    d = as_dictionary(dictionary)
    size = len(d.as_bytes()) if d is not None else 16384
    sizes_t = tuple(sizes) if sizes is not None else (size,)
    fresh = train_dictionary(records, sizes=sizes_t, levels=(level,), holdout=holdout)
    n_ho = max(5, int(len(records) * holdout))
    held = [r for r in records[-n_ho:] if r]
    return DriftReport(measure(held, d, level=level), fresh.heldout["ratio"], measure(held, None, level=level),
                       level, len(records), fresh)


def type_of_json(field_name: str) -> Callable[[bytes], str]:
    """A record-type function for JSON lines: the value of ``field_name`` (``"?"`` when absent or not JSON)."""
    pat = re.compile(rb'"' + re.escape(field_name.encode()) + rb'"\s*:\s*"?([^",}]*)')

    def f(rec: bytes) -> str:
        m = pat.search(rec)
        return m.group(1).decode("utf-8", "replace") if m else "?"

    return f
