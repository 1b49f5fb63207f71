"""Budget mode: pick Zstd settings that fit a stated budget, measure as it goes, correct.

A budget is one of (:meth:`BudgetSpec.parse`):

* ``compress>=200MB/s`` - compression throughput at least this;
* ``decompress>=1GB/s`` - decompression throughput at least this;
* ``time<=2x:level3`` - compression time at most 2x what level 3 takes on the same data (the first
  1 MiB is compressed at level 3 and its measured speed sets the target, so a first chunk unlike the
  rest of the input skews it);
* ``ratio>=4`` (alias ``min-ratio:4``) - the fastest settings that reach this ratio;
* ``max-ratio`` - the best ratio within the stock decoder's default limits (level 19, long mode on big inputs).

What "fits" means (the goal budget mode is judged on): speeds are the
compressing thread's **CPU time** throughput (``time.thread_time``), which is
the wall-clock speed on an idle core and does not count the time the OS gave
to other processes (wall-clock speed on a shared machine is not a property of
the settings).  A speed or time budget is honoured when the whole run,
planning and measuring included, is at most 5% slower than asked; its ratio
should then be at least that of the best single level whose own speed on the
same input fits the budget (the *single-level oracle*).  A ratio budget is
honoured when the output reaches the ratio; a decompression budget when the
written frames decode at least that fast (CPU time of one decoding thread).
Decompression budgets are decided once on the first step (decoding speed
varies little along an input) and not steered.

How it works: levels are discrete, and the speed of a level on unseen data
is predicted only to 15-30% from cheap features (the table's fit error) or
from side trials on 64-256 KiB samples (measured on the benchmark sources),
more than the headroom, so budget mode **measures as it goes**.  Cheap features of the
first bytes (order-0 entropy, share of text, level-1 ratio and CPU speed) go
through a small fitted table (:mod:`precodec.tuners.zstd.budget_table`, made
by ``training/zstd/fit_budget.py``) for a starting level; the input is then
compressed in control steps (1 MiB; an eighth of a smaller known input, at
least 256 KiB), each timed in CPU time.  Content along an input changes every
level's speed and ratio alike, so each step is first *probed*: a small side
trial at a fixed level on a slice of the step (1/32 of it, level 1; for time
budgets 1/8, the reference level), and a level's measurements are kept
relative to the probe.  After each step the controller computes the speed the
rest of the input needs for the whole run to meet the budget (aiming 3% above
it) and climbs: it steps down to the best level that fits when the current one
is measured too slow, tries the first level up not yet run when the current
one has 10% to spare, and goes back to a measured level of better ratio that
fits.  Each level change ends the frame and starts a new standard frame
(0.2-0.6% of ratio each).  A ``time`` budget compresses its first step at the
reference level: its measured speed, carried along the input by the probes,
sets the target.

Incompressible input (level-1 ratio below 1.02) is stored at the fastest
level (raw blocks), and leaves store mode if a later step compresses.
Long-distance matching (window log 27, the stock decoder's default limit) is
used only where it pays: ``max-ratio`` and ``ratio`` budgets on inputs larger
than 16 MiB (beyond level 19's 8 MiB window); on smaller inputs it only costs
speed.

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
LADDER = (-5, -3, -1) + tuple(range(1, 20))
#: measuring granularity (bytes read and timed at a time; smaller for small known inputs, down to MIN_STEP)
CHUNK = 1 << 20
MIN_STEP = 256 << 10
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


def _cpu() -> float:
    """CPU seconds of the calling thread (zstd compresses in it): immune to time given to other processes."""
    return time.thread_time()


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
        t0 = _cpu()
        n = len(c.compress(sample))
        best = min(best, _cpu() - t0)
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
    known = sorted(int(k) for k in coefs)
    for lv in LADDER:
        c = coefs.get(str(lv))
        lo = max((k for k in known if k < lv), default=None)
        hi = min((k for k in known if k > lv), default=None)
        if c is None and lo is not None and hi is not None:  # between two fitted levels: interpolate
            w = (lv - lo) / (hi - lo)
            c = {key: [(1 - w) * u + w * v for u, v in zip(coefs[str(lo)][key], coefs[str(hi)][key])]
                 for key in ("speed", "ratio")}
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
    target_speed: float = 0.0  # bytes/s (CPU time) the controller holds (compress and time budgets)
    target_ratio: float = 0.0
    target_dspeed: float = 0.0  # bytes/s (CPU time) the written frames must decode at
    features: dict[str, float] = field(default_factory=dict)
    predicted: dict[str, float] = field(default_factory=dict)
    candidates: dict[int, dict[str, float]] = field(default_factory=dict)  # side-measured (decompress budgets)
    table: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)  # predicted speed/ratio per level
    reason: str = ""


def _measure_level(sample: bytes, level: int, *, decompress: bool = True) -> tuple[float, float, float]:
    """(compress speed, decompress speed, ratio) of ``sample`` at ``level`` (CPU time; min of 2 / median of 3)."""
    c = zstandard.ZstdCompressor(level=level, write_checksum=False)
    tc = float("inf")
    comp = b""
    for _ in range(2):
        t0 = _cpu()
        comp = c.compress(sample)
        tc = min(tc, _cpu() - t0)
    td = float("inf")
    if decompress:
        d = zstandard.ZstdDecompressor()
        ts = []
        for _ in range(3):
            t0 = _cpu()
            d.decompress(comp)
            ts.append(_cpu() - t0)
        td = float(np.median(ts))
    n = len(sample)
    return n / max(tc, 1e-9), n / max(td, 1e-9), n / max(len(comp), 1)


def _ldm_pays(size: int) -> bool:
    return size > (16 << 20)


def plan(sample: bytes, budget: BudgetSpec, *, size: int = -1, margin: float = 0.10) -> Plan:
    """Decide the starting settings for ``budget`` from the first bytes of the input.

    Parameters
    ----------
    sample : bytes
        The first bytes (the first control step; up to a few hundred KiB are used for features).
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
    ldm = _ldm_pays(size)
    if f.ratio1 < 1.02 and budget.kind != "max-ratio":
        return Plan(str(budget), table=pred, level=LADDER[0], store=True,
                    target_speed=budget.value if budget.kind == "compress" else 0, features=feats,
                    reason="incompressible sample (level-1 ratio < 1.02): stored at the fastest level "
                           "(raw blocks); left if a later step compresses")
    if budget.kind == "max-ratio":
        return Plan(str(budget), table=pred, level=19, long_distance=ldm, window_log=MAX_WINDOW_LOG if ldm else 0,
                    features=feats, predicted={"ratio": pred[19]["ratio"]},
                    reason="best ratio within the stock decoder's default limits" + (", long mode" if ldm else ""))
    if budget.kind == "ratio":
        want = budget.value * (1 + margin / 3)
        # ratios grow with input size (more history): estimate the growth per doubling at level 3 from the
        # first quarter of the first step to the whole step and extrapolate to the input size (3 doublings at most)
        growth = 1.0
        if len(first) >= 4 * (64 << 10) and size != len(first):
            r_small = _measure_level(first[: len(first) // 4], 3, decompress=False)[2]
            r_big = _measure_level(first, 3, decompress=False)[2]
            per_doubling = min(max((r_big / r_small) ** 0.5, 1.0), 1.25)
            span = (size if size > 0 else 8 << 20) / len(first)
            growth = per_doubling ** max(0.0, min(math.log2(max(span, 1.0)), 3.0))
        want /= growth
        feats["expected_ratio_growth"] = round(growth, 3)
        lv = next((lv for lv in LADDER if pred[lv]["ratio"] >= want), 19)
        # check the prediction on the first step: step up until it holds, down while the level below holds too
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
        return Plan(str(budget), table=pred, level=lv, long_distance=ldm, window_log=MAX_WINDOW_LOG if ldm else 0,
                    target_ratio=budget.value, features=feats,
                    predicted={"ratio": r, "speed": pred[lv]["speed"]},
                    reason=f"fastest level reaching ratio {budget.value:g} on the first step (predicted, then "
                           f"measured); the rest is steered by the ratio it still needs")
    if budget.kind == "decompress":
        # decoding speed measured on the first step at candidate levels (CPU time, median of 3); the written frames
        # are decoded as they are made and that measured speed is reported (a check, not steered on: pieces
        # decode slower than whole frames)
        meas: dict[int, dict[str, float]] = {}
        for lv in (-5, -1, 1, 3, 6, 9, 12, 15, 19):
            _, ds, r = _measure_level(first, lv)
            meas[lv] = {"dspeed": ds, "ratio": r}
        fits = [lv for lv, m in meas.items() if m["dspeed"] >= budget.value * (1 + margin / 2)]
        best = max(fits, key=lambda lv: (meas[lv]["ratio"], -lv)) if fits else max(meas, key=lambda lv:
                                                                                     meas[lv]["dspeed"])
        return Plan(str(budget), table=pred, level=best, target_dspeed=budget.value, features=feats, candidates=meas,
                    predicted={"dspeed": meas[best]["dspeed"], "ratio": meas[best]["ratio"]},
                    reason="highest-ratio level whose measured decompression speed on the first step fits (5% "
                           "margin); the output is decoded as it is written and its speed reported" if fits else
                           "no level fits the decompression budget on the first step: the fastest-decoding one")
    if budget.kind == "time":
        # the first step is compressed at the reference level: its measured speed sets the target
        return Plan(str(budget), table=pred, level=budget.ref_level, target_speed=-budget.value, features=feats,
                    reason=f"first step at level {budget.ref_level} measures the reference speed; the target is "
                           f"that speed / {budget.value:g}, held as it goes")
    target = budget.value
    fits = [lv for lv in LADDER if pred[lv]["speed"] >= target * (1 + margin)]
    lv = max(fits, key=lambda v: (pred[v]["ratio"], -v)) if fits else LADDER[0]
    return Plan(str(budget), table=pred, level=lv, target_speed=target, features=feats,
                predicted={"speed": pred[lv]["speed"], "ratio": pred[lv]["ratio"]},
                reason="best level predicted to fit the speed budget with a margin; measured and corrected as it goes")


def _cctx(level: int, p: Plan, checksum: bool) -> zstandard.ZstdCompressor:
    kw: dict[str, Any] = {"write_checksum": checksum}
    if p.long_distance:
        kw.update(enable_ldm=True, window_log=p.window_log or MAX_WINDOW_LOG)
    return zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(level, **kw))


def _warm(c: zstandard.ZstdCompressor) -> zstandard.ZstdCompressor:
    """Allocate ``c``'s context at full size (a frame of unknown size), so a step's timing is the level's speed."""
    o = c.compressobj()
    o.compress(b"\0")
    o.flush()
    return c


class _Estimates:
    """What the controller knows about each level on this input: measured where it ran, else predicted.

    Content along an input changes every level's speed alike (the second MiB of silesia/xml compresses 3x
    slower than the first at any level), so each step's timing is divided by a *probe*: the speed of a small
    side trial at a fixed level on a slice of that step.  A level's measured speed is then its speed relative
    to the probe, times the mean probe speed so far (the content expected ahead); ratios likewise.
    """

    def __init__(self, pred: dict[int, dict[str, float]]):
        self.pred = pred
        self.cpu: dict[int, list[float]] = {}  # level -> [bytes in, sum of CPU seconds x probe speed]
        self.size: dict[int, list[float]] = {}  # level -> [bytes in, bytes out x probe ratio]
        self.probes: list[float] = []
        self.pratios: list[float] = []

    def add(self, lv: int, n: int, dt: float, out: int, probe: float = 1.0, pratio: float = 1.0) -> None:
        self.probes.append(probe)
        self.pratios.append(pratio)
        c = self.cpu.setdefault(lv, [0.0, 0.0])
        c[0] += n
        c[1] += dt * probe
        s = self.size.setdefault(lv, [0.0, 0.0])
        s[0] += n
        s[1] += out * pratio

    def _near(self, lv: int, d: dict[int, list[float]]) -> int | None:
        return min(d, key=lambda m: (abs(LADDER.index(m) - LADDER.index(lv)), -d[m][0])) if d else None

    def speed(self, lv: int) -> float:
        if lv in self.cpu:
            return self.cpu[lv][0] / max(self.cpu[lv][1], 1e-18) * float(np.mean(self.probes))
        m = self._near(lv, self.cpu)
        if m is None:
            return self.pred[lv]["speed"]
        return self.speed(m) * self.pred[lv]["speed"] / self.pred[m]["speed"]

    def ratio(self, lv: int) -> float:
        if lv in self.size:
            return self.size[lv][0] / max(self.size[lv][1], 1e-9) * float(np.mean(self.pratios))
        m = self._near(lv, self.size)
        if m is None:
            return self.pred[lv]["ratio"]
        return self.ratio(m) * self.pred[lv]["ratio"] / self.pred[m]["ratio"]


def _speed_decision(est: _Estimates, level: int, need: float, left_steps: float, ran: int, target: float) -> int:
    """Level for the rest of the input given the CPU speed it needs (``need``): a measured hill climb.

    Every level change ends the frame (its history is lost, 0.2-0.6% of ratio), and a level's speed on this
    input is known only once it ran (side trials on small samples and the fitted table err by 15-30%), so:
    when the current level is measured too slow, step to the best-ratio level that fits (measured speeds where
    known, else the table scaled from the nearest measured level, with a 5% margin); while it fits and at
    least two steps are left, try the first level up not yet run when the current level has 10% to spare
    (whatever the table says: it errs by 15-30%), or go
    to a measured level of better measured ratio that fits; a level measured too slow for the current need is
    not retried.
    """
    if ran < 1:
        return level
    if est.speed(level) < need * 0.97:
        # never below level 1 to make up a deficit (negative levels lose 20-50% of ratio): only when level 1
        # itself is too slow for the budget
        floor = LADDER[0] if est.speed(1) < target * 0.97 else 1
        fits = [lv for lv in LADDER if lv >= floor and est.speed(lv) >= need * (1.0 if lv in est.cpu else 1.05)]
        if not fits:
            return floor
        return max(fits, key=lambda lv: (est.ratio(lv), -lv))
    if left_steps < 2:
        return level
    i = LADDER.index(level)
    better = []
    for lv in LADDER[i + 1:]:  # the first level up not yet run, if every level run in between fits
        if lv not in est.cpu:
            if est.speed(level) >= need * 1.10:
                better.append(lv)
            break
        if est.speed(lv) < need:
            break
    better += [lv for lv in est.cpu if lv != level and est.ratio(lv) >= est.ratio(level) * 1.01
               and est.speed(lv) >= need * 1.02]
    if not better:
        return level
    return max(better, key=lambda lv: (est.ratio(lv) if lv in est.cpu else 0.0, est.speed(lv), -lv))


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
        For inputs of unknown size: bytes over which a speed deficit is to be made up.
    progress : callable, optional
        Called with (bytes read so far, size) after each step.

    Returns
    -------
    dict
        The plan, the levels used (bytes per level), frames, sizes, measured speeds (CPU time and wall
        clock), ratio and whether the budget was met.

    Examples
    --------
    >>> import io
    >>> rep = compress_budget(io.BytesIO(b"x" * 100), io.BytesIO(), BudgetSpec.parse("compress>=1MB/s"))
    >>> rep["read"], rep["frames"]
    (100, 1)
    """
    t_start = time.perf_counter()
    c_start = _cpu()
    step = CHUNK if size <= 0 else int(min(CHUNK, max(MIN_STEP, size // 8)))
    first = src.read(step)
    p = plan(first, budget, size=size)
    c_plan = _cpu() - c_start
    level = p.level
    pred = p.table or predict(features(first[:SAMPLE]))
    est = _Estimates(pred)
    read = written = 0
    by_level: dict[int, int] = {}
    moves: list[str] = []
    cobj = _warm(_cctx(level, p, checksum)).compressobj()
    dobj = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG).decompressobj() \
        if p.target_dspeed else None
    dec_bytes, dec_cpu = 0, 0.0
    frames = 1
    ran = 0  # steps at the current level (in the current frame)
    ref_time = 0.0  # time budgets: estimated CPU time of the reference level for the bytes read
    ref_stream = ref_trial = 1.0
    # the probe (see _Estimates): level 1 on 1/32 of each step for compress budgets, the reference level on 1/8
    # (best of two) for time budgets, whose target it also carries along the input
    probe_c = None
    if p.target_speed and not p.store:
        probe_c = zstandard.ZstdCompressor(level=budget.ref_level if budget.kind == "time" else 1,
                                           write_checksum=False)
    probe_n, probe_reps = (max(32 << 10, step // 8), 2) if budget.kind == "time" else (max(16 << 10, step // 32), 1)
    sl, tt = b"", 1.0
    if probe_c is not None:
        probe_c.compress(first[-probe_n:])  # allocate the trial context once
    chunk = first
    while chunk:
        probe = pratio = 1.0
        if probe_c is not None:  # before the step is compressed: the same cache state every step
            sl = chunk[:probe_n]
            tt = float("inf")
            for _ in range(probe_reps):
                t1 = _cpu()
                pn = len(probe_c.compress(sl))
                tt = min(tt, _cpu() - t1)
            probe, pratio = len(sl) / max(tt, 1e-9), len(sl) / max(pn, 1)
        t0 = _cpu()
        out = cobj.compress(chunk)
        if p.target_ratio:
            out += cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)  # exact per-step ratio (costs ~0.3%)
        dt = _cpu() - t0
        dst.write(out)
        written += len(out)
        read += len(chunk)
        by_level[level] = by_level.get(level, 0) + len(chunk)
        est.add(level, len(chunk), dt, len(out), probe, pratio)
        ran += 1
        if dobj is not None:  # decode what was written, timed: the decompression budget is checked on real output
            t1 = _cpu()
            dobj.decompress(out)
            dec_cpu += _cpu() - t1
            dec_bytes += len(chunk)
        if progress is not None:
            progress(read, size)
        nxt = src.read(step)
        new = level
        if budget.kind == "time":
            # the reference level's CPU time for what was read: the first step ran at it in the stream (the
            # anchor); each later step's content moves that speed as the probe (the reference level too) moves
            if not ref_time:
                ref_stream, ref_trial = len(chunk) / max(dt, 1e-9), probe
                ref_time = dt
            else:
                ref_time += len(chunk) / (ref_stream * probe / ref_trial)
            p.target_speed = read / ref_time / budget.value
            p.features["ref_speed_MBps"] = round(read / ref_time / 1e6, 1)
        if p.store and len(chunk) / max(len(out), 1) >= 1.1:  # compressible after all: leave store mode
            p.store = False
            moves.append(f"{read}: compressible step, left store mode")
        if nxt and not p.store:
            if p.target_speed:
                # the CPU speed the rest needs for the whole run (planning included) to meet the budget, aiming 3% over
                left = (size - read) if size > 0 else horizon
                total = (read + left) / (p.target_speed * 1.03)
                used = _cpu() - c_start
                need = left / (total - used) if total > used else float("inf")
                new = _speed_decision(est, level, need, left / step, ran, p.target_speed)
            elif p.target_ratio:
                aim = p.target_ratio * 1.02
                if size > 0:  # the ratio the rest must reach for the whole output to meet the budget
                    left = size - read
                    allowed_out = (read + left) / aim - written
                    need_r = left / allowed_out if allowed_out > 0 else float("inf")
                else:
                    need_r = aim if read / max(written, 1) >= aim else aim * 1.05
                i = LADDER.index(level)
                cand = level
                if ran >= 1 and est.ratio(level) < need_r and i + 1 < len(LADDER):
                    # trailing: up to the lowest level expected to give what the rest needs
                    ok = [lv for lv in LADDER[i + 1:] if est.ratio(lv) >= need_r * (1.0 if lv in est.size else 1.03)]
                    cand = ok[0] if ok else LADDER[-1]
                elif (ran >= 2 and i > 0 and est.ratio(LADDER[i - 1]) >= need_r * 1.03
                      and not (size > 0 and size - read < 3 * step)):
                    cand = LADDER[i - 1]  # ahead with room and enough left to pay for a new frame: one rung down
                new = cand
        if new != level:
            moves.append(f"{read}: level {level} -> {new}")
            t0 = _cpu()
            out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            dst.write(out)
            written += len(out)
            if dobj is not None:
                t1 = _cpu()
                dobj.decompress(out)
                dec_cpu += _cpu() - t1
                dobj = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG).decompressobj()
            level, ran = new, 0
            cobj = _warm(_cctx(level, p, checksum)).compressobj()
            frames += 1
        chunk = nxt
    out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
    dst.write(out)
    written += len(out)
    if dobj is not None and out:
        t1 = _cpu()
        dobj.decompress(out)
        dec_cpu += _cpu() - t1
    cpu = _cpu() - c_start
    elapsed = time.perf_counter() - t_start
    ratio = read / max(written, 1)
    speed = read / max(cpu, 1e-9)
    met: bool | None = None
    if p.target_ratio:
        met = ratio >= p.target_ratio
    elif p.target_speed:
        met = speed >= p.target_speed * 0.95
    elif p.target_dspeed and dec_bytes:
        met = dec_bytes / max(dec_cpu, 1e-9) >= p.target_dspeed * 0.95
    rec = {
        "mode": "budget",
        "budget": p.budget,
        "plan": {"level": p.level, "long_distance": p.long_distance, "window_log": p.window_log, "store": p.store,
                 "target_speed_MBps": round(p.target_speed / 1e6, 2) if p.target_speed else None,
                 "target_ratio": p.target_ratio or None, "features": p.features, "predicted": p.predicted,
                 "reason": p.reason},
        "levels_used": {str(k): v for k, v in sorted(by_level.items())},
        "moves": moves,
        "frames": frames,
        "step": step,
        "read": read,
        "written": written,
        "ratio": ratio,
        "budget_met": met,
        "cpu_seconds": cpu,
        "seconds": elapsed,
        "speed_MBps": speed / 1e6,
        "wall_speed_MBps": read / max(elapsed, 1e-9) / 1e6,
        "plan_cpu_seconds": c_plan,
    }
    if dec_bytes:
        rec["decompress_MBps"] = dec_bytes / max(dec_cpu, 1e-9) / 1e6
    return rec
