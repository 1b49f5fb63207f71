"""Budget mode: pick Zstd settings that fit a stated budget, measure as it goes, correct.

A budget is one of (:meth:`BudgetSpec.parse`):

* ``compress>=200MB/s`` - compression throughput at least this;
* ``decompress>=1GB/s`` - decompression throughput at least this;
* ``time<=2x:level3`` - compression time at most 2x what level 3 takes on the same data (the first
  1 MiB is compressed at level 3 and its measured speed sets the target, so a first chunk unlike the
  rest of the input skews it);
* ``ratio>=4`` (alias ``min-ratio:4``) - the fastest settings that reach this ratio;
* ``max-ratio`` - the best ratio within the stock decoder's default limits (level 19, long mode on big inputs).

How it works: cheap features of the first chunk (order-0 entropy, share of
text, ratio and speed at level 1 measured on it) go through a small fitted
table (:mod:`precodec.tuners.zstd.budget_table`, made by
``training/zstd/fit_budget.py``) that predicts every level's speed relative to
level 1 and its ratio.  Compression then starts at the best level predicted to
fit with a margin, times every 1 MiB chunk, re-estimates each level's speed on
this data, and moves the level (ending the frame: each level change starts a
new standard frame) so that the cumulative throughput holds the budget.
Incompressible input (level-1 ratio below 1.02) is stored at the fastest level.
Long-distance matching (window log 27, the stock decoder's default limit) is
switched on for large inputs when the budget leaves room.

The output is always a sequence of standard Zstd frames.

Example
-------
>>> import io
>>> from precodec.tuners.zstd.budget import BudgetSpec, compress_budget
>>> out = io.BytesIO()
>>> rep = compress_budget(io.BytesIO(b"hello world " * 50000), out, BudgetSpec.parse("ratio>=10"))
>>> rep["ratio"] >= 10
True
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import zstandard

from ...errors import OptionError
from ...plugins.zstd import MAX_WINDOW_LOG

__all__ = ["BudgetSpec", "Features", "features", "predict", "plan", "compress_budget", "LADDER", "CHUNK"]

#: levels budget mode moves along (fastest first)
LADDER = (-5, -3, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 17, 19)
#: measuring granularity (bytes read and timed at a time)
CHUNK = 1 << 20
#: first bytes used for features
SAMPLE = 128 << 10
_UNITS = {"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024, "mib": 1 << 20, "gib": 1 << 30}


@dataclass(frozen=True)
class BudgetSpec:
    """A stated budget (a value object; build it with :meth:`parse`).

    Attributes
    ----------
    kind : {"compress", "decompress", "time", "ratio", "max-ratio"}
    value : float
        Bytes per second for speeds, the multiple for ``time``, the ratio for ``ratio``.
    ref_level : int
        The reference level of a ``time`` budget.

    Examples
    --------
    >>> BudgetSpec.parse("compress>=200MB/s")
    BudgetSpec(kind='compress', value=200000000.0, ref_level=3)
    >>> BudgetSpec.parse("time<=2x:level3").value
    2.0
    >>> str(BudgetSpec.parse("decompress >= 1GB/s"))
    'decompress>=1GB/s'
    """

    kind: str
    value: float = 0.0
    ref_level: int = 3

    @classmethod
    def parse(cls, text: str) -> "BudgetSpec":
        t = str(text).strip().lower().replace(" ", "")
        m = re.fullmatch(r"(compress|decompress|c|d)>=([0-9.]+)([kmg]i?b|b)?(/s)?", t)
        if m:
            kind = "compress" if m.group(1) in ("compress", "c") else "decompress"
            v = float(m.group(2)) * _UNITS[m.group(3) or "b"]
            if v <= 0:
                raise OptionError(f"budget {text!r}: the speed must be positive")
            return cls(kind, v)
        m = re.fullmatch(r"time<=([0-9.]+)x?(?::level(-?\d+))?", t)
        if m:
            v = float(m.group(1))
            ref = int(m.group(2)) if m.group(2) else 3
            if v <= 0 or not -7 <= ref <= 22:
                raise OptionError(f"budget {text!r}: need a positive multiple and a level in -7..22")
            return cls("time", v, ref)
        m = re.fullmatch(r"(?:ratio>=|min-ratio[:=])([0-9.]+)", t)
        if m:
            v = float(m.group(1))
            if v < 1:
                raise OptionError(f"budget {text!r}: a ratio below 1 is no budget")
            return cls("ratio", v)
        if t in ("max-ratio", "min-size", "best"):
            return cls("max-ratio")
        raise OptionError(
            f"budget={text!r} is not one of 'compress>=200MB/s', 'decompress>=1GB/s', 'time<=2x:level3', "
            f"'ratio>=4' (or 'min-ratio:4'), 'max-ratio'")

    def __str__(self) -> str:
        if self.kind in ("compress", "decompress"):
            for unit, f in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
                if self.value >= f:
                    return f"{self.kind}>={self.value / f:g}{unit}/s"
            return f"{self.kind}>={self.value:g}B/s"
        if self.kind == "time":
            return f"time<={self.value:g}x:level{self.ref_level}"
        if self.kind == "ratio":
            return f"ratio>={self.value:g}"
        return "max-ratio"


@dataclass(frozen=True)
class Features:
    """Cheap features of a sample: order-0 entropy (bits/byte), share of text bytes, level-1 ratio and speed."""

    entropy: float
    text: float
    ratio1: float
    speed1: float
    size: int

    def vector(self) -> list[float]:
        return [1.0, math.log(max(self.ratio1, 1.0)), self.entropy / 8.0, self.text]


_TEXT = np.zeros(256, bool)
_TEXT[[9, 10, 13]] = True
_TEXT[32:127] = True


def features(sample: bytes) -> Features:
    """Features of ``sample`` (level 1 is run once on it, timed).

    Examples
    --------
    >>> f = features(b"abc" * 10000)
    >>> f.text, f.ratio1 > 50
    (1.0, True)
    """
    if not sample:
        return Features(0.0, 0.0, 1.0, 1e9, 0)
    a = np.frombuffer(sample, np.uint8)
    counts = np.bincount(a, minlength=256)
    p = counts[counts > 0] / a.size
    h = float(-(p * np.log2(p)).sum())
    text = float(counts[_TEXT].sum() / a.size)
    c = zstandard.ZstdCompressor(level=1, write_checksum=False)
    best = float("inf")
    for _ in range(2):  # min of two: the first run pays cold caches
        t0 = time.perf_counter()
        n = len(c.compress(sample))
        best = min(best, time.perf_counter() - t0)
    return Features(h, text, len(sample) / max(n, 1), len(sample) / max(best, 1e-9), len(sample))


def _table() -> dict[str, Any]:
    try:
        from . import budget_table

        return budget_table.TABLE
    except ImportError:  # pragma: no cover - the table ships with the package
        return {}


def predict(f: Features, table: dict[str, Any] | None = None) -> dict[int, dict[str, float]]:
    """Predicted compress speed (bytes/s), decompress speed and ratio of every ladder level for features ``f``.

    Examples
    --------
    >>> p = predict(features(b"some text, some more text " * 4000))
    >>> p[19]["ratio"] >= p[1]["ratio"] and p[1]["speed"] > p[19]["speed"]
    True
    """
    table = table if table is not None else _table()
    x = f.vector()
    out: dict[int, dict[str, float]] = {}
    coefs = table.get("levels", {})
    for lv in LADDER:
        c = coefs.get(str(lv))
        if c is None:  # generic fallback (level 1 = 1, geometric slowdown, mild ratio gain)
            rel_s = 2.0 ** (-(lv - 1) / 2.5) if lv >= 1 else 1.0 + 0.15 * (1 - lv)
            rel_r = 1.0 + 0.012 * (lv - 1) if lv >= 1 else 1.0 - 0.04 * (1 - lv)
            rel_d = 1.0
        else:
            rel_s = math.exp(sum(a * b for a, b in zip(c["speed"], x)))
            rel_r = math.exp(sum(a * b for a, b in zip(c["ratio"], x)))
            rel_d = math.exp(sum(a * b for a, b in zip(c.get("dspeed", [0, 0, 0, 0]), x)))
        out[lv] = {"speed": f.speed1 * rel_s, "ratio": max(1.0, f.ratio1 * rel_r),
                   "dspeed_rel": rel_d}
    # monotone in level: a higher level is never predicted faster nor with a lower ratio
    prev_s, prev_r = float("inf"), 0.0
    for lv in LADDER:
        out[lv]["speed"] = prev_s = min(prev_s, out[lv]["speed"])
        out[lv]["ratio"] = prev_r = max(prev_r, out[lv]["ratio"])
    return out


@dataclass
class Plan:
    """What budget mode decided before compressing (and why)."""

    budget: str
    level: int
    long_distance: bool = False
    window_log: int = 0
    store: bool = False
    target_speed: float = 0.0  # bytes/s the controller holds (compress budgets)
    target_ratio: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    predicted: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def _measure_level(sample: bytes, level: int, *, decompress: bool = True) -> tuple[float, float, float]:
    """(compress speed, decompress speed, ratio) of ``sample`` at ``level``, min of two timings each."""
    c = zstandard.ZstdCompressor(level=level, write_checksum=False)
    tc = td = float("inf")
    comp = b""
    for _ in range(2):
        t0 = time.perf_counter()
        comp = c.compress(sample)
        tc = min(tc, time.perf_counter() - t0)
    d = zstandard.ZstdDecompressor()
    for _ in range(3 if decompress else 0):
        t0 = time.perf_counter()
        d.decompress(comp)
        td = min(td, time.perf_counter() - t0)
    n = len(sample)
    return n / max(tc, 1e-9), n / max(td, 1e-9), n / max(len(comp), 1)


def plan(sample: bytes, budget: BudgetSpec, *, size: int = -1, margin: float = 0.10) -> Plan:
    """Decide the starting settings for ``budget`` from the first bytes of the input.

    Parameters
    ----------
    sample : bytes
        The first bytes (up to a few hundred KiB are used).
    budget : BudgetSpec
    size : int
        Total input size if known (-1: unknown, e.g. standard input).
    margin : float
        Safety margin on predicted speeds before any measurement.

    Examples
    --------
    >>> plan(b"a fairly compressible sentence. " * 8000, BudgetSpec.parse("max-ratio")).level
    19
    """
    first = sample
    sample = sample[:SAMPLE]
    f = features(sample)
    pred = predict(f)
    feats = {"entropy": round(f.entropy, 3), "text": round(f.text, 3), "ratio1": round(f.ratio1, 3),
             "speed1_MBps": round(f.speed1 / 1e6, 1)}
    big = size > (64 << 20)
    if f.ratio1 < 1.02 and budget.kind != "max-ratio":
        return Plan(str(budget), LADDER[0], store=True, target_speed=budget.value if budget.kind == "compress" else 0,
                    features=feats, reason="incompressible sample (level-1 ratio < 1.02): stored at the fastest level")
    if budget.kind == "max-ratio":
        return Plan(str(budget), 19, long_distance=big, window_log=MAX_WINDOW_LOG if big else 0, features=feats,
                    predicted={"ratio": pred[19]["ratio"]},
                    reason="best ratio within the stock decoder's default limits" + (", long mode" if big else ""))
    if budget.kind == "ratio":
        want = budget.value * (1 + margin / 3)
        # ratios grow with input size (more history): estimate the growth per doubling at level 3 from the
        # first 256 KiB to the first chunk and extrapolate to the input size (at most 8 MiB of history)
        growth = 1.0
        if len(first) >= 4 * SAMPLE and size != len(first):
            r_small = _measure_level(first[: len(first) // 4], 3, decompress=False)[2]
            r_big = _measure_level(first, 3, decompress=False)[2]
            per_doubling = min(max((r_big / r_small) ** 0.5, 1.0), 1.25)
            span = (size if size > 0 else 8 << 20) / len(first)
            growth = per_doubling ** max(0.0, min(math.log2(max(span, 1.0)), 3.0))
        want /= growth
        feats["expected_ratio_growth"] = round(growth, 3)
        lv = next((lv for lv in LADDER if pred[lv]["ratio"] >= want), 19)
        # check the prediction on the first chunk: step up until it holds, down while the level below holds too
        i = LADDER.index(lv)
        r = _measure_level(first, lv, decompress=False)[2]
        while r < want and i + 1 < len(LADDER):
            i += 1
            r = _measure_level(first, LADDER[i], decompress=False)[2]
        while i > 0:
            r_below = _measure_level(first, LADDER[i - 1], decompress=False)[2]
            if r_below < want:
                break
            i, r = i - 1, r_below
        lv = LADDER[i]
        return Plan(str(budget), lv, target_ratio=budget.value, features=feats,
                    predicted={"ratio": r, "speed": pred[lv]["speed"]},
                    reason=f"fastest level reaching ratio {budget.value:g} on the sample (predicted, then checked)")
    if budget.kind == "decompress":
        # decompression speed is measured on the sample at the candidates (cheap) - no online correction needed
        best = LADDER[0]
        meas: dict[int, tuple[float, float, float]] = {}
        for lv in (-5, -1, 1, 3, 6, 9, 12, 15, 19):
            meas[lv] = _measure_level(sample, lv)
        fits = [lv for lv, m in meas.items() if m[1] >= budget.value * (1 + margin)]
        if fits:
            best = max(fits, key=lambda lv: (meas[lv][2], -lv))
        return Plan(str(budget), best, features=feats,
                    predicted={"dspeed": meas[best][1], "ratio": meas[best][2]},
                    reason="highest-ratio level whose measured decompression speed on the sample fits"
                    if fits else "no level fits the decompression budget on the sample: fastest level")
    # compress speed or time budget
    target = budget.value
    extra = {}
    if budget.kind == "time":
        # the first chunk is compressed at the reference level: its measured speed sets the target
        return Plan(str(budget), budget.ref_level, target_speed=-budget.value, features=feats,
                    reason=f"first chunk at level {budget.ref_level} measures the reference speed; the target is "
                           f"that speed / {budget.value:g}, held as it goes")
    fits = [lv for lv in LADDER if pred[lv]["speed"] >= target * (1 + margin)]
    lv = max(fits) if fits else LADDER[0]
    ldm = big and bool(fits) and pred[lv]["speed"] >= target * 1.3
    return Plan(str(budget), lv, long_distance=ldm, window_log=MAX_WINDOW_LOG if ldm else 0,
                target_speed=target, features={**feats, **extra},
                predicted={"speed": pred[lv]["speed"], "ratio": pred[lv]["ratio"]},
                reason="highest level predicted to fit the speed budget with a margin; corrected as it goes")


def _cctx(level: int, p: Plan, checksum: bool) -> zstandard.ZstdCompressor:
    kw: dict[str, Any] = {"write_checksum": checksum}
    if p.long_distance:
        kw.update(enable_ldm=True, window_log=p.window_log or MAX_WINDOW_LOG)
    return zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(level, **kw))


def compress_budget(src: BinaryIO, dst: BinaryIO, budget: BudgetSpec, *, size: int = -1, checksum: bool = True,
                    horizon: int = 8 << 20, progress: Any = None) -> dict[str, Any]:
    """Compress ``src`` to ``dst`` under ``budget`` with bounded memory; return a decision record.

    Parameters
    ----------
    src, dst : binary file objects
    budget : BudgetSpec
    size : int
        Input size if known (-1 for streams).
    checksum : bool
        Content checksum in each frame.
    horizon : int
        Bytes over which a speed deficit is to be made up.
    progress : callable, optional
        Called with (bytes read so far, size) after each chunk.

    Returns
    -------
    dict
        The plan, the levels used (bytes per level), frames, sizes, measured speeds and ratio.

    Examples
    --------
    >>> import io
    >>> rep = compress_budget(io.BytesIO(b"x" * 100), io.BytesIO(), BudgetSpec.parse("compress>=1MB/s"))
    >>> rep["read"], rep["frames"]
    (100, 1)
    """
    t_start = time.perf_counter()
    first = src.read(CHUNK)
    p = plan(first, budget, size=size)
    t_plan = time.perf_counter() - t_start
    level = p.level
    idx = LADDER.index(level)
    pred = predict(features(first[:SAMPLE])) if (p.target_speed or p.target_ratio) and not p.store else {}
    measr: dict[int, list[int]] = {}  # bytes in / out per level (ratio budgets)
    # online estimates: measured speed per level on this data; correction factor for unmeasured levels
    meas: dict[int, list[float]] = {}
    read = written = frames = 0
    busy = t_plan
    by_level: dict[int, int] = {}
    cctx = _cctx(level, p, checksum)
    cobj = cctx.compressobj()
    frames = 1
    chunk = first

    def est(lv: int) -> float:
        if lv in meas:
            return meas[lv][0] / meas[lv][1]
        if not pred:
            return float("inf")
        ratios = [(meas[m][0] / meas[m][1]) / pred[m]["speed"] for m in meas]
        k = float(np.median(ratios)) if ratios else 1.0
        return pred[lv]["speed"] * k

    while chunk:
        w_before = written
        t0 = time.perf_counter()
        out = cobj.compress(chunk)
        dt = time.perf_counter() - t0
        dst.write(out)
        written += len(out)
        read += len(chunk)
        busy += dt
        by_level[level] = by_level.get(level, 0) + len(chunk)
        m = meas.setdefault(level, [0.0, 0.0])
        m[0] += len(chunk)
        m[1] += dt
        if progress is not None:
            progress(read, size)
        nxt = src.read(CHUNK)
        new = level
        if p.target_speed < 0:  # time budget: the first chunk ran at the reference level
            ref_speed = len(chunk) / max(dt, 1e-9)
            p.target_speed = ref_speed / -p.target_speed
            p.features["ref_speed_MBps"] = round(ref_speed / 1e6, 1)
        if nxt and not p.store:
            if p.target_speed:
                # make up any deficit over the next `horizon` bytes (or what is left, if the size is known)
                hz = max(CHUNK, min(horizon, size - read)) if size > 0 else horizon
                aim = p.target_speed * 1.04  # aim a little above: the goal is to hold the budget
                allowed = (read + hz) / aim - (time.perf_counter() - t_start)
                need = hz / allowed if allowed > 0 else float("inf")
                fits = [lv for lv in LADDER if est(lv) >= need * 1.02]
                cand = max(fits) if fits else LADDER[0]
                if cand > level and est(cand) < need * 1.06:  # hysteresis before moving up
                    cand = level
                new = cand
            elif p.target_ratio:
                out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)  # exact accounting of bytes written
                dst.write(out)
                written += len(out)
                mr = measr.setdefault(level, [0, 0])
                mr[0] += len(chunk)
                mr[1] += written - w_before
                aim = p.target_ratio * 1.02
                if size > 0:  # the ratio the rest must reach for the whole output to meet the budget
                    left = size - read
                    allowed_out = read / aim + left / aim - written
                    need_r = left / allowed_out if allowed_out > 0 else float("inf")
                else:
                    need_r = aim if read / max(written, 1) >= aim else aim * 1.05

                def est_r(lv: int) -> float:
                    if lv in measr:
                        return measr[lv][0] / max(measr[lv][1], 1)
                    return (mr[0] / max(mr[1], 1)) * pred[lv]["ratio"] / pred[level]["ratio"] if pred else 0.0

                ok = [lv for lv in LADDER if est_r(lv) >= need_r]
                cand = min(ok) if ok else LADDER[-1]
                if cand < level:  # down one rung at a time, with hysteresis: each change restarts the frame
                    below = LADDER[idx - 1]
                    cand = below if est_r(below) >= need_r * 1.03 else level
                new = cand
        if new != level:
            t0 = time.perf_counter()
            out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            busy += time.perf_counter() - t0
            dst.write(out)
            written += len(out)
            level, idx = new, LADDER.index(new)
            cobj = _cctx(level, p, checksum).compressobj()
            frames += 1
        chunk = nxt
    t0 = time.perf_counter()
    out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
    busy += time.perf_counter() - t0
    dst.write(out)
    written += len(out)
    elapsed = time.perf_counter() - t_start
    ratio = read / max(written, 1)
    met: bool | None = None
    if p.target_ratio:
        met = ratio >= p.target_ratio
    elif p.target_speed:
        met = read / max(elapsed, 1e-9) >= p.target_speed * 0.95
    return {
        "mode": "budget",
        "budget": p.budget,
        "plan": {"level": p.level, "long_distance": p.long_distance, "window_log": p.window_log, "store": p.store,
                 "target_speed_MBps": round(p.target_speed / 1e6, 2) if p.target_speed else None,
                 "target_ratio": p.target_ratio or None, "features": p.features, "predicted": p.predicted,
                 "reason": p.reason},
        "levels_used": {str(k): v for k, v in sorted(by_level.items())},
        "frames": frames,
        "read": read,
        "written": written,
        "ratio": ratio,
        "budget_met": met,
        "seconds": elapsed,
        "speed_MBps": read / max(elapsed, 1e-9) / 1e6,
        "plan_seconds": t_plan,
    }
