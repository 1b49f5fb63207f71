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

How it works (default, ``design="plan"``: decide once, then commit) for compress, time and ratio budgets on a
seekable input of known size: a **strided sample** (8 slices spread over the input; its share of the input and
clamps are calibrated, see below; inputs up to 1 MiB whole) is compressed at the table's predicted level and its
neighbours (3 trials, climbing or descending to the budget's edge, up to 5 while the top level measured leaves
30% to spare; levels 1 and 2 too when the pick is at most 5, as they often out-compress levels 3-4), in CPU
time: each trial compresses the even slices untimed (a fresh context's first touches of its tables made the
first trial of a level up to 2x slower than a repeat) and times the odd ones; ``time`` budgets also run the
reference level on the same sample, so the target is relative to the same bytes. Sample speeds are scaled to
whole-input speeds by a per-level factor (a sample's small working set runs faster than a whole input) and
ratios by a per-level history gain, both fitted on the training sources (``fit_budget.py --sampling``), which
also picks the sample's share and the safety margin on speeds: the pair that, simulated on the training
sources for 32 speed budgets, meets the goal most often while holding at least 95% of the budgets. Speed
budgets take the highest-ratio level whose estimated whole-run CPU time (planning already spent included) fits
with the margin; where other levels fit too and their sample ratios are within 3% of its (the sample cannot
order them: the history of a whole input helps some levels more), and the budget leaves time for it, each of
up to 3 such **finalists** compresses the whole input and the smallest frame is kept; where it leaves time only
for part of that (compress budgets only), they **race** over a prefix of the input (512 KiB-2 MiB and at most a
quarter of it, as long as the budget pays for in the worst case), each in its own frame, and the one that wrote
the fewest bytes there, among those whose measured speed leaves time for the rest, goes on in its frame (unless
the prefix compresses unlike the sample). Ratio budgets take the fastest measured level whose corrected sample
ratio reaches the budget. A sample's short slices miss most of the history a whole input has, and by an amount that
depends on the input (whole/sample ratio 1.02-1.62 at level 10 on the benchmark sources), so when the sample points
to a slow level (under 8% of level 3's speed) ratio budgets first compress the whole input once at level 3 (costing
at most about that share of the run): it measures this input's own gain g3, each level's whole-input ratio is then
estimated as level 3's times the level's gain over level 3 on half the sample times ``g3 ** a`` (``a`` per level,
fitted on the training sources), and the lowest level reaching the ratio with 1% to spare is taken; if level 3
itself reaches it, the pass is the output. The whole input is then compressed as
**one frame** at that level, with one correction at most: after the first 1/8 of the input, if the run is more
than 15% slower than the rest needs and the first part compresses like the sample (its ratio within 0.75-1.75x
of the sample's at that level: otherwise the content changes along the input and the first part's speed says
little of the rest), it ends the frame and continues at the best level estimated to fit; for
ratio budgets, if the first part's ratio shows that the input gets less history gain than fitted (homogeneous
records get none) and the rest would fall short, it continues at the lowest level expected to reach what the
rest needs (after a whole-input pass, the rest's ratio is known at level 3 and carried to the level by the
estimate, or by the gain over level 3 the first part shows, whichever is higher). On small inputs (sampled
whole) the chosen trial is the output. The record states the trials, the planning CPU time, the steady speed
(planning left out) and what the correction saw and did.

The earlier design, ``design="control"`` (used for decompression budgets and for streams of unknown size):
levels are discrete, and the speed of a level on unseen data
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
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import zstandard

from ...errors import OptionError
from ...plugins.zstd import MAX_WINDOW_LOG

try:  # imported here, not on first use: planning time counts against a speed budget
    from . import budget_table as _budget_table
except ImportError:  # pragma: no cover - the table ships with the package
    _budget_table = None  # type: ignore[assignment]

__all__ = ["BudgetSpec", "Features", "features", "predict", "plan", "plan_sampled", "compress_budget", "LADDER",
           "CHUNK"]

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
    return _budget_table.TABLE if _budget_table is not None else {}


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
    #: plan-once speed budgets: (whole-input speed, ratio) estimated per level (measured on the sample or scaled)
    estimates: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False)
    #: plan-once speed budgets: levels each compressed over the whole input, the smallest output kept
    finalists: list[int] = field(default_factory=list)
    #: plan-once speed budgets, when whole-input finalists do not fit: levels raced over the input's first
    #: ``race_bytes`` in one frame each; the one with the fewest bytes there (that still fits) goes on
    race: list[int] = field(default_factory=list)
    race_bytes: int = 0
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
        td = float(statistics.median(ts))
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
                    target_speed=budget.value if budget.kind == "compress" else 0,
                    target_ratio=budget.value if budget.kind == "ratio" else 0.0, features=feats,
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



def _run_record(p: "Plan", *, by_level: dict, moves: list, frames: int, step: int, read: int, written: int,
                ratio: float, met: bool | None, cpu: float, elapsed: float, c_plan: float,
                candidates: bool) -> dict[str, Any]:
    """The decision record of a budget run (shared by both designs)."""
    plan = {"level": p.level, "long_distance": p.long_distance, "window_log": p.window_log, "store": p.store,
            "target_speed_MBps": round(p.target_speed / 1e6, 2) if p.target_speed else None,
            "target_ratio": p.target_ratio or None, "features": p.features, "predicted": p.predicted}
    if candidates:
        plan["candidates"] = p.candidates
    plan["reason"] = p.reason
    return {"mode": "budget", "budget": p.budget, "plan": plan,
            "levels_used": {str(k): v for k, v in sorted(by_level.items())}, "moves": moves, "frames": frames,
            "step": step, "read": read, "written": written, "ratio": ratio, "budget_met": met,
            "cpu_seconds": cpu, "seconds": elapsed, "speed_MBps": read / max(cpu, 1e-9) / 1e6,
            "wall_speed_MBps": read / max(elapsed, 1e-9) / 1e6, "plan_cpu_seconds": c_plan}

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

    def _estimate(self, lv: int, d: dict[int, list[float]], key: str, probe: float, eps: float) -> float:
        """Measured (``d``, normalised by the mean ``probe``) at ``lv``, else scaled from the nearest measured
        level by the table's ``key``, else the table itself."""
        if lv in d:
            return d[lv][0] / max(d[lv][1], eps) * probe
        m = self._near(lv, d)
        if m is None:
            return self.pred[lv][key]
        return self._estimate(m, d, key, probe, eps) * self.pred[lv][key] / self.pred[m][key]

    def speed(self, lv: int) -> float:
        return self._estimate(lv, self.cpu, "speed", float(np.mean(self.probes)) if self.probes else 1.0, 1e-18)

    def ratio(self, lv: int) -> float:
        return self._estimate(lv, self.size, "ratio", float(np.mean(self.pratios)) if self.pratios else 1.0, 1e-9)


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


# --------------------------------------------------------------------------- decide once, then commit
#: strided planning sample: SAMPLE_SLICES slices spread over the input, totalling SAMPLE_FRACTION of it, clamped to
#: [SAMPLE_MIN, SAMPLE_MAX]; inputs up to WHOLE_INPUT are sampled whole (and the chosen trial is the output).  The
#: fraction and its clamps are the defaults: the calibrated ones are in the table (``sampling.sample``)
SAMPLE_SLICES = 8
SAMPLE_FRACTION = 1 / 32
SAMPLE_MIN = 192 << 10
SAMPLE_MAX = 1 << 20
WHOLE_INPUT = 1 << 20
#: candidates measured on the sample at most
MAX_TRIALS = 3
#: speed budgets: levels whose sample ratios are within this share of the chosen one's are finalists, each
#: compressed over the whole input when the budget leaves time for all (at most MAX_FINALISTS), smallest kept
FINALIST_SPREAD = 0.03
MAX_FINALISTS = 3
#: ... and when the budget has no time for whole-input finalists: a **race** over a contiguous prefix of the
#: input (at least RACE_MIN, at most RACE_MAX and RACE_SHARE of the input, what the budget leaves time for: the
#: time left is itself an estimate, and a race spending all the slack the plan saw left silesia/xml's time<=2x
#: budget 14% short on the held-out benchmark, at the right level), each level in its own frame with the whole
#: input's parameters, and the level that wrote the fewest bytes there goes on in its frame (the losers' prefix
#: is the cost).  A prefix of a few windows has the history the sample lacks: on the benchmark and
#: training sources a 512 KiB-2 MiB prefix orders levels 1-5 as the whole input does wherever the content does
#: not change along the input (where it does, FIRST_PART_ALIKE fails and the plan's level is kept)
RACE_MIN = 512 << 10
RACE_MAX = 2 << 20
RACE_SHARE = 0.25
#: one correction: after this share of the input (at least CHUNK) the run's own speed is compared with the plan
CHECK_SHARE = 1 / 8
CORRECT_BELOW = 0.85
#: ... and only when the first part's ratio over the sample's, at the run's level, is within this range (the first
#: part is then taken to be like the rest)
FIRST_PART_ALIKE = (0.75, 1.75)
#: ratio budgets: when the level the sample points to runs slower than this share of level 3's speed, one
#: whole-input pass at level 3 (costing at most about this share of the run) measures the input's real history
#: gain; its output is kept, and is the result when level 3 reaches the ratio, for inputs up to WHOLE_PASS_KEEP
WHOLE_PASS_SHARE = 0.08
WHOLE_PASS_KEEP = 64 << 20
#: ratio budgets after the whole-input pass: the estimate must clear the ratio by this much (the gain model's
#: error on the training sources is 1.3-3.0% rms, in log, for levels 5-12)
WHOLE_PASS_SAFETY = 0.01
#: ... and a level's whole-input gain is taken as at most this times level 3's (the exponent fit extrapolates
#: wildly on inputs far outside the training sources' gains of 1.0-1.5)
WHOLE_PASS_GAIN_CAP = 1.25


def _sampling() -> dict[str, Any]:
    """Calibration of sample trials against whole-input runs (fitted on the training sources by fit_budget.py)."""
    s = dict(_table().get("sampling", {}))
    s.setdefault("speed_factor", {})  # level -> whole-input CPU speed / sample CPU speed (median over sources)
    s.setdefault("margin", 0.08)  # safety margin on sample speeds
    s.setdefault("ratio_gain", {})  # level -> whole-input ratio / sample ratio (median over the training sources)
    s.setdefault("ratio_gain_default", 1.0)
    return s


def _sample_shape() -> tuple[float, int, int]:
    """(fraction, min bytes, max bytes) of the planning sample, as calibrated (``fit_budget.py --sampling``)."""
    s = _table().get("sampling", {}).get("sample", {})
    return float(s.get("fraction", SAMPLE_FRACTION)), int(s.get("min", SAMPLE_MIN)), int(s.get("max", SAMPLE_MAX))


def _strided(src: BinaryIO, size: int, shape: tuple[float, int, int] | None = None) -> list[bytes]:
    """SAMPLE_SLICES slices spread evenly over a seekable ``src`` of ``size`` bytes (the whole input if small).

    ``shape``: (fraction of the input, min bytes, max bytes) of the sample in all; the calibrated one by default.
    """
    fraction, smin, smax = shape or _sample_shape()
    pos = src.tell()
    try:
        if size <= WHOLE_INPUT:
            return [src.read(size)]
        total = int(min(smax, max(smin, size * fraction)))
        each = max(total // SAMPLE_SLICES, 4096)
        starts = np.linspace(0, size - each, SAMPLE_SLICES).astype(np.int64)
        out = []
        for s in starts.tolist():
            src.seek(pos + s)
            out.append(src.read(each))
        return out
    finally:
        src.seek(pos)


def _check_at(size: int) -> int:
    """Bytes read when the run's one correction looks (a whole number of CHUNK reads)."""
    at = max(CHUNK, int(size * CHECK_SHARE))
    return min(size, -(-at // CHUNK) * CHUNK)


def _whole_pass(src: BinaryIO, size: int, level: int, p: "Plan", checksum: bool, keep: bool, *, marked: bool = True
                ) -> tuple[Trial, tuple[int, int]]:
    """Compress all of a seekable ``src`` at ``level`` in one frame (content size in its header); ``src``'s position
    is kept.

    Also returns ``(bytes in, bytes out)`` at the point where the run's correction looks (:func:`_check_at`;
    the block is flushed there, so that prefix's ratio is exact), unless ``marked`` is false.
    """
    pos = src.tell()
    at, mark = (_check_at(size) if marked else -1), (0, 0)
    c = _warm(_cctx(level, p, checksum))
    o = c.compressobj(size=size)
    parts: list[bytes] = []
    n = m = 0
    dt = 0.0
    try:
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            t0 = _cpu()
            out = o.compress(chunk)
            n += len(chunk)
            if n == at and n < size:
                out += o.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                mark = (n, m + len(out))
            dt += _cpu() - t0
            m += len(out)
            if keep:
                parts.append(out)
        t0 = _cpu()
        out = o.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        dt += _cpu() - t0
        m += len(out)
        if keep:
            parts.append(out)
    finally:
        src.seek(pos)
    return Trial(level, n / max(dt, 1e-9), n / max(m, 1), b"".join(parts) if keep else b""), mark


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable()) and f.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False


@dataclass
class Trial:
    """One candidate level compressed over the planning sample (one stream, CPU time)."""

    level: int
    speed: float  # sample bytes / CPU second
    ratio: float
    blob: bytes = b""  # the frame, when the sample is the whole input


def _trial(slices: list[bytes], level: int, p: "Plan", checksum: bool, keep: bool) -> Trial:
    """Compress the sample slices at ``level`` (same options as the run) and time it in CPU time.

    A whole-input sample (one slice, ``keep``) is one frame, timed, and kept as the output.  A strided sample is
    compressed as two streams: the even slices first, untimed, then the odd slices, timed.  The first stream
    warms the new context: a fresh context's tables are first touched while compressing (page faults), which
    on the held-out logs' 192 KiB sample made the first trial of each level in a process up to 2x slower than
    the same trial repeated, while a whole input amortises that cost.  The ratio is over both streams.
    """
    c = _warm(_cctx(level, p, checksum))
    if keep or len(slices) < 2:
        o = c.compressobj(size=len(slices[0])) if keep else c.compressobj()
        parts = []
        t0 = _cpu()
        for s in slices:
            parts.append(o.compress(s))
        parts.append(o.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        dt = _cpu() - t0
        n = sum(len(s) for s in slices)
        out = sum(len(x) for x in parts)
        return Trial(level, n / max(dt, 1e-9), n / max(out, 1), b"".join(parts) if keep else b"")
    o = c.compressobj()
    out = sum(len(o.compress(s)) for s in slices[0::2]) + len(o.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
    o = c.compressobj()
    t0 = _cpu()
    out2 = sum(len(o.compress(s)) for s in slices[1::2]) + len(o.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
    dt = _cpu() - t0
    n = sum(len(s) for s in slices)
    return Trial(level, sum(len(s) for s in slices[1::2]) / max(dt, 1e-9), n / max(out + out2, 1))


def _race_plan(racers: list[int], est_s: Any, size: int, room: float) -> tuple[list[int], int]:
    """The racers (the first is the plan's pick) and prefix length the budget leaves time for.

    The worst case is paid for: the prefix at every racer but the winner, and the whole input at the winner,
    whichever racer wins, within ``room`` (seconds, the margin already taken off).  Racers are dropped from the
    end until the prefix is at least RACE_MIN; it is at most RACE_MAX and RACE_SHARE of the input.
    """
    racers = list(racers)
    while len(racers) > 1:
        inv = {v: 1.0 / max(est_s(v), 1e-9) for v in racers}
        k = min((room - size * inv[w]) / (sum(inv.values()) - inv[w]) for w in racers)
        k = int(min(k, RACE_MAX, size * RACE_SHARE)) // MIN_STEP * MIN_STEP
        if k >= RACE_MIN:
            return racers, k
        racers.pop()
    return racers, 0


def plan_sampled(src: BinaryIO, budget: BudgetSpec, *, size: int, checksum: bool = True
                 ) -> tuple[Plan, dict[int, Trial], float]:
    """Decide the level once, from trials on a strided sample of a seekable input of known ``size``.

    The table's predicted level and its neighbours (``MAX_TRIALS`` at most, climbing or descending until the
    budget's edge is found) are compressed over the sample as one stream each, in CPU time.  Speed budgets: the
    highest-ratio level whose sample speed, scaled to the whole input (``speed_factor``) with a safety margin,
    leaves room for the planning already spent; ``time`` budgets measure the reference level on the same sample
    and compare with it.  Ratio budgets: the fastest level whose sample ratio, corrected for the extra history a
    whole input gets (``ratio_gain``, fitted on the training sources), reaches the budget; when that points to a
    slow level, one whole-input pass at level 3 measures this input's own gain first (see the module docstring).

    Returns the plan, the trials by level, and the estimated whole-input speed scale.

    Examples
    --------
    >>> import io
    >>> p, trials, _ = plan_sampled(io.BytesIO(b"some text, more text. " * 20000), BudgetSpec.parse("ratio>=20"),
    ...                             size=440000)
    >>> trials[p.level].ratio >= 20
    True
    """
    c0 = _cpu()
    cal = _sampling()
    slices = _strided(src, size)
    whole = len(slices) == 1
    sample_n = sum(len(s) for s in slices)
    head = b"".join(s[: (SAMPLE // 2) // len(slices)] for s in slices)
    f = features(head)
    pred = predict(f)
    feats = {"entropy": round(f.entropy, 3), "text": round(f.text, 3), "ratio1": round(f.ratio1, 3),
             "speed1_MBps": round(f.speed1 / 1e6, 1), "sample_bytes": sample_n, "sample_slices": len(slices)}
    ldm = budget.kind == "ratio" and _ldm_pays(size)
    p = Plan(str(budget), level=3, long_distance=ldm, window_log=MAX_WINDOW_LOG if ldm else 0, features=feats,
             table=pred)
    sf = cal["speed_factor"]
    # (statistics, not np.median: that imports numpy.ma on first use, 80 ms of CPU counted as planning)
    sfd = float(statistics.median(sf.values())) if isinstance(sf, dict) and sf else 1.0

    def kf(lv: int) -> float:  # whole-input speed / sample speed at this level (fitted on the training sources)
        if whole:
            return 1.0
        return float(sf.get(str(lv), sfd)) if isinstance(sf, dict) else float(sf)

    kfac = kf(3)
    margin = float(cal["margin"])
    trials: dict[int, Trial] = {}

    def run(lv: int) -> Trial:
        if lv not in trials:
            trials[lv] = _trial(slices, lv, p, checksum, whole)
        return trials[lv]

    if f.ratio1 < 1.02 and run(1).ratio < 1.02:
        p.level, p.store = LADDER[0], True
        p.target_speed = budget.value if budget.kind == "compress" else 0.0
        # a ratio budget is still judged (it cannot be met: the record says so, not "not checked")
        p.target_ratio = budget.value if budget.kind == "ratio" else 0.0
        p.reason = "incompressible sample (level-1 ratio < 1.02): stored at the fastest level (raw blocks)"
        return p, trials, kfac
    plan0 = 0.0  # CPU spent outside this call (none: c0 is taken on entry)

    if budget.kind == "ratio":
        p.target_ratio = budget.value
        gain = {int(k): float(v) for k, v in cal["ratio_gain"].items()}
        g0 = float(cal["ratio_gain_default"])

        def est_r(lv: int) -> float:
            return run(lv).ratio * (1.0 if whole else gain.get(lv, g0))

        # level 3 on the sample (cheap) anchors the table's ratio curve: the first level expected to reach it
        r3 = run(3).ratio
        start = next((lv for lv in LADDER if lv >= 1 and r3 * pred[lv]["ratio"] / pred[3]["ratio"] *
                      (1.0 if whole else gain.get(lv, g0)) >= budget.value), 19)
        a3 = cal.get("gain_exponent_l3") or {}
        # the table already expects a slow level: straight to the whole-input pass below, no slow sample trials
        early = bool(not whole and a3 and pred[start]["speed"] < pred[3]["speed"] * WHOLE_PASS_SHARE)
        lv = 3
        if not early:
            i = LADDER.index(start)
            if est_r(LADDER[i]) >= budget.value:
                while i > 0 and len(trials) < MAX_TRIALS + 1 and est_r(LADDER[i - 1]) >= budget.value:
                    i -= 1
            else:
                while i + 1 < len(LADDER) and len(trials) < MAX_TRIALS + 1 and est_r(LADDER[i]) < budget.value:
                    i += 1
            ok = [lv for lv in trials if est_r(lv) >= budget.value]
            if ok:
                lv = max(ok, key=lambda v: (trials[v].speed, -v))
                p.reason = (f"fastest measured level whose sample ratio (x whole-input gain) reaches {budget.value:g}")
            else:
                lv = max(trials, key=lambda v: est_r(v))
                p.reason = f"no measured level reaches {budget.value:g} on the sample: the best-ratio one"
        if early or (not whole and a3 and trials[lv].speed * kf(lv) < trials[3].speed * kf(3) * WHOLE_PASS_SHARE):
            # the sample's median history gain is far off on some inputs (XML, logs: 1.4-1.7x at level 10
            # against 1.14 fitted), and a wrong guess here costs 20-50x in speed (level 19 for level 10's
            # ratio).  A slow level is needed, so one whole-input pass at level 3 is cheap next to it: it gives
            # this input's own gain g3, and each level's gain follows as g3 ** a (fitted on the training sources)
            w, mark = _whole_pass(src, size, 3, p, checksum, keep=size <= WHOLE_PASS_KEEP)
            g3 = max(w.ratio / trials[3].ratio, 1e-6)
            p.features["whole_level3_ratio"] = round(w.ratio, 4)
            p.features["whole_level3_gain"] = round(g3, 4)
            # for the run's correction: level 3's bytes out at the check point and in all
            p.features["whole_level3_mark"] = [mark[0], mark[1], round(size / w.ratio)]

            r3s = trials[3].ratio  # level 3 on the sample (always run above)

            def gain3(v: int) -> float:  # capped (training sources: at most 1.14x level 3's gain; xml 1.18x)
                return min(g3 ** float(a3.get(str(v), 1.0)), g3 * WHOLE_PASS_GAIN_CAP) if g3 > 1 else g3

            need = budget.value * (1 + WHOLE_PASS_SAFETY)
            est: dict[int, float] = {}
            if w.ratio >= budget.value:
                trials[3] = w  # the pass is the output (or, not kept, level 3 is what the run uses)
                lv = 3
                p.reason = f"level 3 over the whole input reaches {budget.value:g} (ratio {w.ratio:.3f})"
            else:
                # trials on half the sample (every other slice), with the level's search settings but tables and
                # window sized for the sample: a full-size context costs 23-46 ms to allocate at levels 12-19.
                # Only the ratio to level 3 on the same slices is used, carried by level 3's measured numbers
                half = slices[::2]
                small: dict[int, float] = {}

                def ratio_small(v: int) -> float:
                    if v not in small:
                        cp = zstandard.ZstdCompressionParameters.from_level(v)
                        c = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters.from_level(
                            v, window_log=min(cp.window_log, 20), hash_log=min(cp.hash_log, 19),
                            chain_log=min(cp.chain_log, 20)))
                        o = c.compressobj()
                        m = sum(len(o.compress(x)) for x in half) + len(o.flush())
                        small[v] = sum(len(x) for x in half) / max(m, 1)
                    return small[v]

                def est_m(v: int) -> float:
                    return r3s * ratio_small(v) / ratio_small(3) * gain3(v)

                guess = next((v for v in LADDER if v > 3 and r3s * pred[v]["ratio"] / pred[3]["ratio"] *
                              gain3(v) >= need), 19)
                i = LADDER.index(guess)
                if est_m(LADDER[i]) >= need:
                    while LADDER[i - 1] > 3 and len(small) < 5 and est_m(LADDER[i - 1]) >= need:
                        i -= 1
                else:
                    while i + 1 < len(LADDER) and len(small) < 6 and est_m(LADDER[i]) < need:
                        i += 1
                measured = sorted(v for v in small if v > 3)

                def est_any(v: int) -> float:
                    if v in small:
                        return est_m(v)
                    m = min(measured, key=lambda u: (abs(u - v), -u))
                    return est_m(m) * pred[v]["ratio"] / pred[m]["ratio"] * gain3(v) / gain3(m)

                est = {v: est_any(v) for v in LADDER if v > 3}
                ok = [v for v in measured if est[v] >= need]
                lv = min(ok) if ok else max(measured, key=lambda v: est[v])
                p.reason = (f"level 3 over the whole input gained x{g3:.3f} over the sample: the lowest level "
                            f"whose estimated whole-input ratio (level 3's x the level's gain over it on the "
                            f"sample x g3**a) reaches {budget.value:g} with {100 * WHOLE_PASS_SAFETY:g}% to spare"
                            if ok else
                            f"level 3 over the whole input gained x{g3:.3f}; no level is expected to "
                            f"reach {budget.value:g}: the best-ratio one")
                p.features["half_sample_ratios"] = {str(v): round(r, 4) for v, r in sorted(small.items())}
                p.features["whole_estimates"] = {str(v): round(r, 4) for v, r in est.items()}
            p.level = lv
            p.predicted = {"ratio": round(w.ratio if lv == 3 else est[lv], 4),
                           "speed_MBps": round((w.speed if lv == 3 else
                                                (trials[lv].speed if lv in trials else
                                                 trials[3].speed * pred[lv]["speed"] / pred[3]["speed"])
                                                * kf(lv)) / 1e6, 1)}
            p.candidates = {v: {"speed_MBps": round(t.speed / 1e6, 1), "ratio": round(t.ratio, 4)}
                            for v, t in sorted(trials.items())}
            return p, trials, kfac
        p.level = lv
        p.predicted = {"ratio": round(est_r(lv), 4), "speed_MBps": round(trials[lv].speed * kf(lv) / 1e6, 1)}
        p.candidates = {v: {"speed_MBps": round(t.speed / 1e6, 1), "ratio": round(t.ratio, 4)}
                        for v, t in sorted(trials.items())}
        return p, trials, kfac

    # speed budgets (compress, time)
    if budget.kind == "time":
        ref = run(budget.ref_level)
        p.target_speed = ref.speed * kf(budget.ref_level) / budget.value
        p.features["ref_speed_MBps"] = round(ref.speed * kf(budget.ref_level) / 1e6, 1)
    else:
        p.target_speed = budget.value

    def fits(lv: int) -> bool:
        # whole-run CPU time: the planning spent so far plus the input at this level's estimated speed
        spent = _cpu() - c0 + plan0
        t_run = 0.0 if whole else size / (run(lv).speed * kf(lv))
        return (t_run * (1 + margin) + spent) <= size / p.target_speed

    # the table's speeds, in whole-input terms (anchored on the reference trial for time budgets)
    anchor = trials[budget.ref_level].speed / pred[budget.ref_level]["speed"] if budget.kind == "time" else 1.0
    fast = [lv for lv in LADDER if pred[lv]["speed"] * anchor * kf(lv) >= p.target_speed * (1 + margin)]
    start = max(fast, key=lambda v: (pred[v]["ratio"], -v)) if fast else LADDER[0]
    i = LADDER.index(start)
    def slack(lv: int) -> float:  # budget time left / this level's estimated time with the margin
        left = size / p.target_speed - (_cpu() - c0 + plan0)
        return left / (size / (run(lv).speed * kf(lv)) * (1 + margin)) if not whole else 1.0

    run(LADDER[i])
    if fits(LADDER[i]):
        # climb; past MAX_TRIALS only while the top level measured leaves 30% to spare (two more trials at most)
        while i + 1 < len(LADDER) and (len(trials) < MAX_TRIALS or
                                       (len(trials) < MAX_TRIALS + 2 and slack(LADDER[i]) >= 1.3)):
            run(LADDER[i + 1])
            if not fits(LADDER[i + 1]):
                break
            i += 1
    else:
        while i > 0 and len(trials) < MAX_TRIALS:
            i -= 1
            if fits(LADDER[i]):
                break
    if max(trials) <= 5:  # levels 1 and 2 often out-compress levels 3-4 (and are cheap to measure)
        for lv in (1, 2):
            if lv not in trials and len(trials) < MAX_TRIALS + 2:
                run(lv)
    # every level: measured where it ran, else scaled from the nearest measured level by the table (no further
    # trial: it would cost more time); the highest-ratio level that fits, planning paid
    spent = _cpu() - c0 + plan0
    room = size / p.target_speed - spent

    def near(v: int) -> int:
        return min(trials, key=lambda m: (abs(LADDER.index(m) - LADDER.index(v)), -m))

    def est_s(v: int) -> float:
        if v in trials:
            return trials[v].speed * kf(v)
        m = near(v)
        return trials[m].speed * kf(m) * pred[v]["speed"] / pred[m]["speed"]

    def est_r(v: int) -> float:
        if v in trials:
            return trials[v].ratio
        m = near(v)
        return trials[m].ratio * pred[v]["ratio"] / pred[m]["ratio"]

    hi = max(trials)
    pool = [v for v in LADDER if v in trials or v < hi]  # nothing above the highest level measured
    ok = [v for v in pool if room > 0 and (0.0 if whole else size / est_s(v)) * (1 + margin) <= room]
    if whole:
        ok = [v for v in ok if v in trials]
    if ok:
        # measured levels first when an unmeasured one is not clearly better (table ratios are rough)
        best_m = max((v for v in ok if v in trials), key=lambda v: (est_r(v), -v), default=None)
        best_u = max(ok, key=lambda v: (est_r(v), -v))
        lv = best_u if best_m is None or est_r(best_u) > est_r(best_m) * 1.01 else best_m
        p.reason = ("highest-ratio level whose speed, measured on the sample (or scaled from the nearest measured "
                    "level by the table), fits the budget with the margin, planning paid")
    else:
        lv = LADDER[0]
        p.reason = "no level fits: the fastest"
    p.estimates = {v: (est_s(v), est_r(v)) for v in pool}
    if ok and not whole:
        # the sample cannot order levels whose ratios are this close (the history a whole input adds differs
        # by level: on held-out logs level 2 out-compresses 3 and 4 over the whole input, not on the sample);
        # where the budget leaves time for it, compress the whole input at each and keep the smallest, else
        # race them over a prefix
        close = sorted((v for v in ok if v != lv and est_r(v) >= est_r(lv) * (1 - FINALIST_SPREAD)),
                       key=lambda v: (-est_r(v), v))
        fin, t_fin = [lv], size / est_s(lv)
        for v in close if size <= WHOLE_PASS_KEEP else ():
            if len(fin) < MAX_FINALISTS and (t_fin + size / est_s(v)) * (1 + margin) <= room:
                fin.append(v)
                t_fin += size / est_s(v)
        if len(fin) > 1:
            p.finalists = fin
            p.reason += (f"; levels {', '.join(map(str, fin))} are within {100 * FINALIST_SPREAD:g}% in ratio on "
                         f"the sample and all fit: each compresses the whole input, the smallest is kept")
        elif close and budget.kind == "compress":
            # (not for time budgets: their target is itself estimated from the sample, and races there spent
            # slack that was not there: 2 and 4 of 10 held-out time budgets missed by 5-14% in two benchmark
            # runs, against 1 and 0 without the race in the same runs)
            racers, k = _race_plan([lv] + close[:MAX_FINALISTS - 1], est_s, size, room / (1 + margin))
            if len(racers) > 1:
                p.race, p.race_bytes = racers, k
                p.reason += (f"; levels {', '.join(map(str, racers))} are within {100 * FINALIST_SPREAD:g}% in "
                             f"ratio on the sample, and the budget leaves time to race them over the first "
                             f"{k >> 10} KiB: the fewest bytes there goes on")
    if lv not in trials:
        p.level = lv
        p.predicted = {"speed_MBps": round(est_s(lv) / 1e6, 1), "ratio": round(est_r(lv), 4)}
        p.candidates = {v: {"speed_MBps": round(t.speed / 1e6, 1), "ratio": round(t.ratio, 4)}
                        for v, t in sorted(trials.items())}
        return p, trials, kfac
    p.level = lv
    p.predicted = {"speed_MBps": round(run(lv).speed * kf(lv) / 1e6, 1), "ratio": round(run(lv).ratio, 4)}
    p.candidates = {v: {"speed_MBps": round(t.speed / 1e6, 1), "ratio": round(t.ratio, 4)}
                    for v, t in sorted(trials.items())}
    return p, trials, kfac


def _race(src: BinaryIO, p: Plan, *, size: int, checksum: bool, c_start: float
          ) -> tuple[int, Any, float, bytes]:
    """Race ``p.race`` over the first ``p.race_bytes`` of ``src``, each level in its own frame (block flushed at
    the end, so the bytes compare exactly); return the level that goes on, its compressor (its frame still open),
    its CPU seconds and its output so far.

    The winner is the racer with the fewest bytes among those whose measured speed on the prefix leaves time for
    the rest within the budget (none: the fastest).  Where the prefix does not compress like the sample
    (FIRST_PART_ALIKE, at the plan's level), the content changes along the input, the prefix says little of the
    rest, and the plan's level goes on.  The record (``features["race"]``) has every racer's bytes and speed.
    """
    objs = {v: _warm(_cctx(v, p, checksum)).compressobj() for v in p.race}
    outs: dict[int, list[bytes]] = {v: [] for v in p.race}
    cpu = {v: 0.0 for v in p.race}
    r_plan = p.estimates.get(p.level, (0.0, 0.0))[1]

    def alike(r_first: float) -> bool:
        return not r_plan or FIRST_PART_ALIKE[0] <= r_first / r_plan <= FIRST_PART_ALIKE[1]

    n = 0
    done = True
    while n < p.race_bytes:
        chunk = src.read(min(CHUNK, p.race_bytes - n))
        if not chunk:
            break
        n += len(chunk)
        for v, o in objs.items():
            t0 = _cpu()
            outs[v].append(o.compress(chunk))
            if n >= p.race_bytes:
                outs[v].append(o.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
            cpu[v] += _cpu() - t0
        # content unlike the sample already (the output so far lags by at most a block): stop racing
        if n < p.race_bytes and not alike(n / max(sum(len(x) for x in outs[p.level]), 1)):
            done = False
            break
    nbytes = {v: sum(len(x) for x in outs[v]) for v in p.race}
    speed = {v: n / max(cpu[v], 1e-9) for v in p.race}
    left_time = size / p.target_speed - (_cpu() - c_start) if p.target_speed else float("inf")
    fit = [v for v in p.race if (size - n) / speed[v] <= left_time]
    if not done or not alike(n / max(nbytes[p.level], 1)):
        win, why = p.level, "the prefix is unlike the sample (ratio): the plan's level goes on"
    elif fit:
        win = min(fit, key=lambda v: (nbytes[v], v))
        why = "fewest bytes on the prefix" + ("" if len(fit) == len(p.race) else " among the racers that fit")
    else:
        win, why = max(p.race, key=lambda v: speed[v]), "no racer fits the rest: the fastest"
    p.features["race"] = {"bytes": n, "winner": win, "why": why, "stopped_early": not done,
                          "racers": {str(v): {"bytes_out": nbytes[v], "speed_MBps": round(speed[v] / 1e6, 1)}
                                     for v in p.race}}
    return win, objs[win], cpu[win], b"".join(outs[win])


def _compress_planned(src: BinaryIO, dst: BinaryIO, budget: BudgetSpec, *, size: int, checksum: bool,
                      progress: Any) -> dict[str, Any]:
    """Plan once on a strided sample, then compress the whole input as one frame (one correction at most)."""
    t_start = time.perf_counter()
    c_start = _cpu()
    p, trials, kfac = plan_sampled(src, budget, size=size, checksum=checksum)
    c_plan = _cpu() - c_start
    level = p.level
    by_level: dict[int, int] = {}
    moves: list[str] = []
    read = written = 0
    frames = 1
    t = trials.get(level)
    whole = t if t is not None and t.blob else None  # the sample was the whole input: the chosen trial is the output
    if whole is None and p.finalists:
        # each finalist over the whole input (one frame each, kept in memory: inputs up to WHOLE_PASS_KEEP), the
        # next one only while the measured time leaves room for it; the smallest frame is the output
        passes: dict[str, dict[str, float]] = {}
        first_speed = 0.0
        margin = max(0.0, float(_sampling()["margin"]))  # the plan's margin, as when it chose them
        for v in p.finalists:
            if whole is not None:
                speed_v = first_speed * p.estimates[v][0] / p.estimates[p.finalists[0]][0]
                if (_cpu() - c_start) + size / speed_v * (1 + margin) > size / p.target_speed:
                    p.features["finalist_skipped"] = (f"level {v}: the time left does not fit it (about "
                                                      f"{speed_v / 1e6:.0f} MB/s from the first pass)")
                    break
            w, _ = _whole_pass(src, size, v, p, checksum, keep=True, marked=False)
            passes[str(v)] = {"speed_MBps": round(w.speed / 1e6, 1), "ratio": round(w.ratio, 4)}
            first_speed = first_speed or w.speed
            if whole is None or len(w.blob) < len(whole.blob):
                whole = w
        p.features["finalist_passes"] = passes
    if whole is not None:
        level = whole.level
        src.seek(size, 1)
        dst.write(whole.blob)
        read, written = size, len(whole.blob)
        by_level[level] = size
        if progress is not None:
            progress(read, size)
    else:
        check_at = _check_at(size) if (p.target_speed or p.target_ratio) and not p.store else -1
        run_cpu, run_in = 0.0, 0
        corrected = False
        if p.race and p.race_bytes:
            level, cobj, run_cpu, blob = _race(src, p, size=size, checksum=checksum, c_start=c_start)
            dst.write(blob)
            read = run_in = p.features["race"]["bytes"]
            written = len(blob)
            by_level[level] = read
            if progress is not None:
                progress(read, size)
        else:
            cobj = _warm(_cctx(level, p, checksum)).compressobj()

        def switch(new: int, why: str) -> None:
            """End the current frame and go on at level ``new`` in a new one."""
            nonlocal cobj, written, level, frames
            out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
            dst.write(out)
            written += len(out)
            moves.append(why)
            level, frames = new, frames + 1
            cobj = _warm(_cctx(level, p, checksum)).compressobj()
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            t0 = _cpu()
            out = cobj.compress(chunk)
            run_cpu += _cpu() - t0
            run_in += len(chunk)
            dst.write(out)
            written += len(out)
            read += len(chunk)
            by_level[level] = by_level.get(level, 0) + len(chunk)
            if progress is not None:
                progress(read, size)
            if not corrected and p.target_ratio and 0 < check_at <= read < size:
                corrected = True
                # ratio budgets: the first part, one frame so far, shows how much of the history gain this input
                # really gets (homogeneous records get none); if the plan then falls clearly short, one step up
                out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                dst.write(out)
                written += len(out)
                g_obs = max(1.0, (read / max(written, 1)) / trials[level].ratio) if level in trials else 1.0
                left = size - read
                allowed = size / p.target_ratio - written
                need_r = left / allowed if allowed > 0 else float("inf")
                mark = p.features.get("whole_level3_mark")
                if mark and mark[0] == read and level != 3:
                    # the whole-input level-3 pass knows the rest exactly at level 3 (same bytes, same
                    # history); the plan's whole-input estimate says how much more this level gets.  (The gain
                    # over level 3 seen on the first part alone is smaller: it grows with the history, 1.20 on
                    # silesia/xml's first MiB at level 11 against 1.28 over the whole.)
                    est = {int(v): r for v, r in p.features.get("whole_estimates", {}).items()}
                    w3 = size / max(mark[2], 1)
                    r3_rest = left / max(mark[2] - mark[1], 1)
                    # this level's gain over level 3 as observed on the first part (same bytes, one frame so
                    # far) is a floor for the rest, which has more history: where the fitted estimate is below
                    # it (silesia/nci: the estimate at level 19 fell short of what level 10 reached), the floor
                    # holds
                    g_first = mark[1] / max(written, 1)
                    r_rest = r3_rest * max(est[level] / w3, g_first)
                    if r_rest < need_r:
                        up = sorted(v for v in est if v > level and r_rest * est[v] / est[level] >= need_r * 1.01)
                        new = up[0] if up else max(est, key=lambda v: est[v])
                        if new != level:
                            switch(new, f"{read}: ratio so far {read / written:.3f}; at level 3 the rest gets "
                                        f"{r3_rest:.3f}, so about {r_rest:.3f} here, and "
                                        f"needs {need_r:.3f}: level {level} -> {new}")
                elif level in trials and trials[level].ratio * g_obs < need_r:
                    pred = p.table

                    def r_est(v: int) -> float:
                        m = min(trials, key=lambda t: (abs(LADDER.index(t) - LADDER.index(v)), -t))
                        return trials[m].ratio * pred[v]["ratio"] / pred[m]["ratio"] * g_obs

                    up = [v for v in LADDER if v > level and r_est(v) >= need_r * 1.01]
                    new = min(up) if up else 19
                    if new != level:
                        switch(new, f"{read}: ratio so far {read / written:.3f} (history gain {g_obs:.3f}), the "
                                    f"rest needs {need_r:.3f}: level {level} -> {new}")
            if not corrected and p.target_speed and 0 < check_at <= read < size:
                corrected = True
                # one correction, only when the run is clearly slower than the plan needs for the rest, and only
                # when the first part is like the sample: content that changes along the input (a poorly
                # compressible first column, an XML header) runs at another speed than the rest, which the
                # strided sample has seen and the first part has not
                t0 = _cpu()
                out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                run_cpu += _cpu() - t0
                dst.write(out)
                written += len(out)
                left = size - read
                used = _cpu() - c_start
                room = size / p.target_speed / 1.02 - used
                need = left / room if room > 0 else float("inf")
                speed = run_in / max(run_cpu, 1e-9)
                est = p.estimates  # whole-input (speed, ratio) per level, as planned
                r_first, r_plan = read / max(written, 1), est[level][1]
                alike = FIRST_PART_ALIKE[0] <= r_first / max(r_plan, 1e-9) <= FIRST_PART_ALIKE[1]
                action = "none: fast enough"
                if speed < need * CORRECT_BELOW and not alike:
                    action = "none: the first part is unlike the sample (ratio): its speed says little of the rest"
                elif speed < need * CORRECT_BELOW:
                    scale = speed / max(est[level][0], 1e-9)  # this input's run vs the plan, at this level
                    ok = [lv for lv, (s_lv, _r) in est.items() if s_lv * scale >= need * 1.05]
                    new = max(ok, key=lambda v: (est[v][1], -v)) if ok else level  # none would rescue it
                    action = f"level {level} -> {new}" if new != level else "none: no level would rescue it"
                    if new != level:
                        switch(new, f"{read}: measured {speed / 1e6:.0f} MB/s, needs {need / 1e6:.0f}: "
                                    f"level {level} -> {new}")
                p.features["speed_check"] = {"at": read, "measured_MBps": round(speed / 1e6, 1),
                                             "needed_MBps": round(need / 1e6, 1),
                                             "first_part_ratio": round(r_first, 3), "sample_ratio": round(r_plan, 3),
                                             "action": action}
        out = cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        dst.write(out)
        written += len(out)
    cpu = _cpu() - c_start
    elapsed = time.perf_counter() - t_start
    ratio = read / max(written, 1)
    speed = read / max(cpu, 1e-9)
    steady = read / max(cpu - c_plan, 1e-9)
    met: bool | None = None
    if p.target_ratio:
        met = ratio >= p.target_ratio
    elif p.target_speed:
        met = speed >= p.target_speed * 0.95
    rec = _run_record(p, by_level=by_level, moves=moves, frames=frames, step=CHUNK, read=read, written=written,
                      ratio=ratio, met=met, cpu=cpu, elapsed=elapsed, c_plan=c_plan, candidates=True)
    rec["design"] = "plan-once"
    rec["steady_speed_MBps"] = steady / 1e6
    return rec


def compress_budget(src: BinaryIO, dst: BinaryIO, budget: BudgetSpec, *, size: int = -1, checksum: bool = True,
                    horizon: int = 8 << 20, progress: Any = None, design: str = "plan") -> dict[str, Any]:
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
    design : {"plan", "control"}
        ``"plan"`` (default): for compress, time and ratio budgets on a seekable input of known size, decide
        the level once on a strided sample and write one frame (:func:`plan_sampled`); other budgets and
        streams of unknown size use ``"control"``, the measured chunk-by-chunk controller.

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
    if design not in ("plan", "control"):
        raise OptionError(f"design={design!r} is not 'plan' or 'control'")
    if design == "plan" and budget.kind in ("compress", "time", "ratio") and size > 0 and _seekable(src):
        return _compress_planned(src, dst, budget, size=size, checksum=checksum, progress=progress)
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
    rec = _run_record(p, by_level=by_level, moves=moves, frames=frames, step=step, read=read, written=written,
                      ratio=ratio, met=met, cpu=cpu, elapsed=elapsed, c_plan=c_plan, candidates=False)
    if dec_bytes:
        rec["decompress_MBps"] = dec_bytes / max(dec_cpu, 1e-9) / 1e6
    return rec
