"""Search strategies over an encoder's parameter space.

* :class:`Evaluator` encodes, decodes and scores candidates against one
  reference, caching every result and logging it in the decision record.
  SSIMULACRA2 uses the cached-reference scorer
  (:class:`precodec.metrics.ssimulacra2.Ssimulacra2Reference`).
* :func:`bisect_quality` is the plain baseline (like jpeg-recompress): a
  bisection over ``quality`` with everything else fixed.
* :func:`oracle` is the truth for training and benchmarks: for every
  configuration, the smallest quality meeting the target (bisection, then a
  scan below it for non-monotone steps), and the configuration with the
  fewest bytes.
* :func:`predicted_search` is the learned path: the predictor's curves give,
  per configuration, the lowest quality reaching the target and its size; the
  smallest is encoded and measured, and the measurement corrects the curves
  (of that configuration, and in part of the others) for at most a few
  further steps: up (possibly in another configuration) when the target was
  missed, one step down when the corrected curves say a clearly smaller file
  also passes.  Its constants (:data:`SEARCH_SETTINGS`) are tuned on
  out-of-fold predictions of the training images.
* :class:`Calibration` carries a batch's mean first-encode error from one
  :func:`predicted_search` to the next (opt-in).

Example
-------
>>> import numpy as np
>>> from precodec.plugins import get_codec
>>> from precodec.record import DecisionRecord
>>> from precodec.targets import Target
>>> img = np.dstack([np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))] * 3)
>>> ev = Evaluator(img, img, Target.parse("ssimulacra2:70"), record=DecisionRecord())
>>> best = bisect_quality(ev, "jpeg:420")
>>> best.quality["ssimulacra2"] >= 70
True
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics import get_metric
from ..record import DecisionRecord
from ..targets import Target
from .space import CONFIGS, Config

__all__ = ["Calibration", "Encoded", "Evaluator", "bisect_quality", "bytes_cap_search", "oracle", "predicted_search",
           "search_quality", "encode_and_score"]

#: constants of :func:`predicted_search` per format and target band (:func:`target_band`: a point of score
#: costs more bytes the higher the target, and the curves flatten near the top).  Tuned by
#: training/predictor/tune_search.py on out-of-fold predictions of the training images (never Kodak); a
#: format without its own ``"mid"`` entry uses ``"low"``.
BANDS = (("high", 85.0), ("mid", 75.0), ("lowmid", 65.0), ("low", float("-inf")))


#: backends whose encodes cost about as much as a SSIMULACRA2 run (mozjpeg: trellis quantisation and scan
#: optimisation, ~20x libjpeg-turbo); ``slow_penalty`` in the settings makes them rank as that much larger
SLOW_BACKENDS = frozenset({"mozjpeg"})


def target_band(value: float) -> str:
    """Band of an SSIMULACRA2 target: ``"high"`` (>= 85), ``"mid"`` (>= 75), ``"lowmid"`` (>= 65) or ``"low"``."""
    return next(name for name, lo in BANDS if value >= lo)


SEARCH_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    # low and mid: kept after a 2026-11-22 retune with the clean photographs added.  On predictor 1.1.0's
    # out-of-fold predictions (657 items) these give 60/70: 1.53/1.45 encodes, +3.1/+3.7 % over the oracle
    # and 80: 1.45, +3.6 %; the retuned low-band settings 1.50/1.42, +3.1/+3.8 % (no better in bytes)
    # training/predictor/tune_search.py --format jpeg --band low --every 2 (tuned on 231 images, targets
    # 60/70/80: 1.50/1.39/1.40 encodes, +2.4/+2.5/+3.5 % bytes over the oracle)
    # slow_penalty 0.015 (low, mid): mozjpeg must be predicted 1.5 % smaller to be chosen; simulated time
    # ratio to bisection 0.43/0.41/0.36 -> 0.41/0.40/0.32 at 60/70/80 for +0.2-0.4 % bytes
    ("jpeg", "low"): {"aim_margin": 0.25, "select_margin": 1.0, "up_margin": 0.3, "down_margin": 0.6,
                      "down_gain": 0.06, "down_min": 0.0, "max_down": 2, "share": 0.75, "cross": True,
                      "max_step_up": 5, "slow_penalty": 0.015},
    # targets 65-75 ("lowmid", 2026-12-07): the low band's settings are shared with 60, which has no encodes to
    # spare, while 70 had 0.15 to spare out of fold (1.46 of 1.6) and more on Kodak (1.25).  Tuned for 70 alone at
    # the 1.6-encode budget on out-of-fold predictions of the relabelled training images (657 items,
    # train.py --oof 5 --epochs 300; tune_search.py --band lowmid --rounds 2 --budget 1.6, starting from the low
    # band): 70 from 1.46 encodes, +3.81 % over the oracle to 1.60, +3.14 % (objective over score shifts -1/0/+1:
    # 4.26 -> 3.20)
    ("jpeg", "lowmid"): {"aim_margin": 0.0, "select_margin": 2.0, "up_margin": 0.3, "down_margin": 0.3,
                         "down_gain": 0.04, "down_min": 0.0, "max_down": 2, "share": 0.75, "cross": True,
                         "max_step_up": 5, "slow_penalty": 0.015},
    # --format jpeg --band mid (462 images, target 80: 1.42 encodes, +3.2 %; the low-band settings: 1.37, +3.7 %)
    # up_margin 0.3 -> 0.15 on 2026-12-07 (tune_search.py --band mid --rounds 2 --budget 1.6 on the same
    # out-of-fold predictions as lowmid: 80 from 1.45 encodes, +3.86 % to 1.46, +3.63 %; nothing else moved)
    ("jpeg", "mid"): {"aim_margin": 0.0, "select_margin": 1.0, "up_margin": 0.15, "down_margin": 0.3,
                      "down_gain": 0.06, "down_min": 0.0, "max_down": 2, "share": 0.75, "cross": True,
                      "max_step_up": 5, "slow_penalty": 0.015},
    # --format jpeg --band high, retuned 2026-11-22 (tune_search.py --band high, out-of-fold predictions with the
    # clean photographs added); on predictor 1.1.0's own out-of-fold predictions (657 items)
    # 90 -> 1.39 encodes, +2.2 % over the oracle (the earlier settings: 1.56, +2.0 %).  Clean 768 px photographs
    # stay near 2 encodes: there a score error of 0.8 points is one quality step.
    # up_margin 0.3 -> 0.0 on 2026-12-03: after a miss, step to the corrected crossing itself.  Judged with
    # tune_search.py --jitter 0.3 (the simulated curves as rough between grid qualities as real ones measure,
    # roughness.py) and its usual objective (score shifts -1/0/+1, budget 1.5): objective 3.41 -> 2.78 (seed 1
    # 3.39 -> 2.80); target 90 from 1.39 encodes, +2.62 % to 1.40, +2.06 %.  For the low and mid bands the same
    # test keeps 0.3 (low 8.89 against 15.34, mid 5.93 against 7.75: aiming at the crossing there misses again too
    # often); without --jitter it had preferred 0.0 everywhere, which on Kodak cost target 60 0.13 encodes.  A
    # full --jitter 0.3 retune of this band (--rounds 2) leaves these settings as they are.  AVIF keeps 0.3: with
    # --jitter 0.45 (roughness.py --format avif) low 11.69 against 15.92, high 7.16 against 10.50.
    # Clean photographs at 90 (2026-12-08, out of fold, the 225 never-JPEG training rows; the 432 BSDS rows, which
    # ship as JPEG q~95, take 1.13 encodes with these settings): 1.92 encodes, +2.55 % over the oracle.
    # tune_search.py --band high --rows clean --budget 1.6 --rounds 2 from these settings ends at down_gain 1.0
    # (no step down), share 1.0, max_down 1: 1.35 encodes, +4.45 %.  Points on the way: down_gain 0.12 1.44 / +3.35 %,
    # aim_margin -0.5 1.60 / +3.52 %, down_gain 0.02 2.01 / +2.29 %.  No setting the descent tried meets both of the
    # issue's goals (1.6 encodes, 3 %) on clean photographs at 90 with this predictor; not changed (Kodak not rerun).
    ("jpeg", "high"): {"aim_margin": 0.0, "select_margin": 1.0, "up_margin": 0.0, "down_margin": 0.3,
                       "down_gain": 0.08, "down_min": 0.0, "max_down": 2, "share": 0.5, "cross": True,
                       "max_step_up": 3},
    # --format avif --band low (154 images: 60/70/80 -> 1.50/1.49/1.48 encodes, +2.7/+2.4/+2.9 %)
    ("avif", "low"): {"aim_margin": 0.0, "select_margin": 2.0, "up_margin": 0.3, "down_margin": 0.3,
                      "down_gain": 0.06, "down_min": 0.0, "max_down": 2, "share": 0.75, "cross": True,
                      "max_step_up": 5},
    # targets 65-75 (2026-12-08), as for JPEG: tune_search.py --format avif --band lowmid --rounds 2 --budget 1.6 on
    # out-of-fold predictions of the relabelled training images (222 items, train.py --oof 5 --formats avif
    # --epochs 300), starting from the low band: 70 from 1.55 encodes, +3.49 % over the oracle to 1.60, +2.80 %
    # (objective over score shifts -1/0/+1: 3.54 -> 2.95)
    ("avif", "lowmid"): {"aim_margin": 0.0, "select_margin": 1.0, "up_margin": 0.0, "down_margin": 0.3,
                         "down_gain": 0.04, "down_min": 0.0, "max_down": 2, "share": 0.75, "cross": True,
                         "max_step_up": 5},
    # --format avif --band high (154 images: 90 -> 1.47 encodes, +5.3 %)
    ("avif", "high"): {"aim_margin": 0.5, "select_margin": 0.0, "up_margin": 0.3, "down_margin": 0.3,
                       "down_gain": 0.06, "down_min": 1.0, "max_down": 1, "share": 1.0, "cross": False,
                       "max_step_up": 0},
}
#: encodes the learned path may spend before falling back to search
MAX_STEPS = 6
#: a first measurement this many points away from the prediction means the model is wrong here: fall back
UNRELIABLE = 12.0


#: :class:`Calibration`: the prior weight (in images) that shrinks a batch's mean first-encode error toward 0, and
#: the largest correction applied (points)
CAL_PRIOR = 4.0
CAL_LIMIT = 3.0


class Calibration:
    """Running correction of the predictor's score error over a batch of images.

    The predictor's error on one image is mostly an offset, and on a batch
    of similar images (one camera, one shoot, one kind of scan) largely the
    same offset: a set unlike the training images shifts every prediction
    the same way, and every first encode then misses (or overshoots).  A
    batch passes one ``Calibration`` to each :func:`predicted_search`: each
    first encode adds its measured error (measured minus predicted score,
    per format and target band), and later searches start from the mean so
    far, shrunk toward zero by :data:`CAL_PRIOR` images and clipped to
    :data:`CAL_LIMIT` points.  Measurements still decide: it only moves the
    first aim.  One per batch; safe to share between threads.

    Examples
    --------
    >>> cal = Calibration()
    >>> cal.offset("jpeg", "high")
    0.0
    >>> for _ in range(4):
    ...     cal.add("jpeg", "high", -1.0)
    >>> cal.offset("jpeg", "high")
    -0.5
    """

    def __init__(self, *, prior: float = CAL_PRIOR, limit: float = CAL_LIMIT) -> None:
        if not prior >= 0 or not limit >= 0:
            raise ValueError(f"prior and limit must be >= 0, got {prior!r} and {limit!r}")
        self.prior, self.limit = float(prior), float(limit)
        self._sum: dict[tuple[str, str], float] = {}
        self._n: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, fmt: str, band: str, error: float) -> None:
        """Record one first encode's score error (measured minus the model's prediction)."""
        if not abs(error) <= UNRELIABLE:  # the search falls back there; nan too
            return
        k = (fmt, band)
        with self._lock:
            self._sum[k] = self._sum.get(k, 0.0) + float(error)
            self._n[k] = self._n.get(k, 0) + 1

    def offset(self, fmt: str, band: str) -> float:
        """Score offset to start ``fmt``'s searches in ``band`` from (0.0 before any image)."""
        k = (fmt, band)
        with self._lock:
            n, total = self._n.get(k, 0), self._sum.get(k, 0.0)
        return float(np.clip(total / (n + self.prior), -self.limit, self.limit)) if n else 0.0

    def count(self, fmt: str, band: str) -> int:
        """First encodes recorded for ``fmt`` in ``band``."""
        with self._lock:
            return self._n.get((fmt, band), 0)


@dataclass
class Encoded:
    """One encoded candidate."""

    data: bytes
    params: dict[str, Any]
    quality: dict[str, float] = field(default_factory=dict)
    config: str = ""
    backend: str = ""
    format: str = ""
    decode_ms: float | None = None

    @property
    def size(self) -> int:
        return len(self.data)


class Evaluator:
    """Encode, decode and score candidates of one image against one reference (cached).

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        What the encoder gets (after preprocessing).
    reference : numpy.ndarray
        What quality is measured against (the caller's original).
    target : Target or None
        Metric to score with (None: no scoring).
    record : DecisionRecord
        Receives one entry per encode in ``candidates`` and the work counters.
    fixed : mapping, optional
        Settings fixed by the caller, merged into every candidate.
    metadata : optional
        Passed to the encoders.
    images : mapping, optional
        Per-format encoder input when it differs (alpha flattened for JPEG).
    """

    def __init__(self, image: Any, reference: np.ndarray, target: Target | None, *, record: DecisionRecord,
                 fixed: Mapping[str, Any] | None = None, metadata: Any = None,
                 images: Mapping[str, Any] | None = None) -> None:
        self.image = image
        self.images = dict(images or {})
        self.reference = reference
        self.target = target
        self.record = record
        self.fixed = dict(fixed or {})
        self.metadata = metadata
        self._cache: dict[tuple[str, int], Encoded] = {}
        self._scores: dict[tuple[str, int], float] = {}
        self._scorer: Any = None
        self._prep: Any = None

    # -- scoring --------------------------------------------------------
    def prepare(self, *, background: bool = False) -> None:
        """Prepare the SSIMULACRA2 reference (once per image, shared by every candidate).

        With ``background`` the preparation runs in a helper thread, overlapping
        whatever the caller does next (features, the first encode); the first
        score waits for it.
        """
        if self.target is None or self.target.metric != "ssimulacra2" or self._scorer is not None \
                or self._prep is not None:
            return
        from ..metrics.ssimulacra2 import Ssimulacra2Reference

        if not background:
            self._scorer = Ssimulacra2Reference(self.reference)
            return
        import concurrent.futures

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="precodec-ref")
        self._prep = pool.submit(Ssimulacra2Reference, self.reference)
        pool.shutdown(wait=False)

    def _score(self, decoded: np.ndarray) -> float:
        assert self.target is not None
        t = time.perf_counter()
        if self.target.metric == "ssimulacra2":
            if self._scorer is None:
                if self._prep is not None:
                    self._scorer, self._prep = self._prep.result(), None
                else:
                    self.prepare()
            s = float(self._scorer.score(decoded))
        else:
            s = float(get_metric(self.target.metric)(self.reference, decoded))
        self.record.metric_runs += 1
        self._add_time("metric", t)
        return s

    def _add_time(self, key: str, t: float) -> None:
        self.record.time_ms[key] = self.record.time_ms.get(key, 0.0) + (time.perf_counter() - t) * 1e3

    def params_for(self, config: str | Config, quality: int | None) -> dict[str, Any]:
        from ..plugins import get_codec

        c = CONFIGS[config] if isinstance(config, str) else config
        space = get_codec(c.backend).space
        p = {**c.params, **{k: v for k, v in self.fixed.items() if k in space}}
        if quality is not None:
            qp = space["quality"]
            p["quality"] = int(min(max(quality, qp.low or 0), qp.high or 100))
        return space.validate(p)

    def encode(self, config: str | Config, quality: int | None, *, score: bool = True) -> Encoded:
        """Encode ``config`` at ``quality`` (cached), decode and score when a target is set."""
        from ..plugins import get_codec

        c = CONFIGS[config] if isinstance(config, str) else config
        params = self.params_for(c, quality)
        q = int(params.get("quality", -1))
        key = (c.name, q)
        hit = self._cache.get(key)
        if hit is not None and (hit.quality or not score or self.target is None):
            return hit
        codec = get_codec(c.backend)
        if hit is None:
            t = time.perf_counter()
            data = codec.encode(self.images.get(c.format, self.image), params, metadata=self.metadata)
            self.record.encodes += 1
            self._add_time("encode", t)
            hit = Encoded(data, params, {}, c.name, c.backend, c.format)
            self._cache[key] = hit
            self.record.candidates.append({"config": c.name, "params": dict(params), "bytes": len(data)})
        if score and self.target is not None and not hit.quality:
            skey = (c.score_name, q)
            if skey in self._scores:  # same pixels (progressive vs sequential): no new metric run
                s = self._scores[skey]
            else:
                t = time.perf_counter()
                dec_im = codec.decode(hit.data)
                hit.decode_ms = (time.perf_counter() - t) * 1e3
                self._add_time("decode", t)
                dec = np.asarray(dec_im.convert("RGB" if self.reference.ndim == 3 else "L"))
                s = self._score(dec)
                self._scores[skey] = s
            hit.quality = {self.target.metric: s}
            for cand in reversed(self.record.candidates):
                if cand.get("config") == c.name and cand["params"].get("quality") == params.get("quality"):
                    cand[self.target.metric] = round(s, 4)
                    break
        return hit

    def met(self, e: Encoded) -> bool:
        assert self.target is not None
        return self.target.met(e.quality[self.target.metric])

    def value(self, e: Encoded) -> float:
        assert self.target is not None
        return e.quality[self.target.metric]

    def quality_range(self, config: str) -> tuple[int, int]:
        from ..plugins import get_codec

        qp = get_codec(CONFIGS[config].backend).space["quality"]
        return int(qp.low or 0), int(qp.high or 100)


def bisect_quality(ev: Evaluator, config: str, *, low: int | None = None, high: int | None = None) -> Encoded:
    """Smallest quality of ``config`` meeting the target, by bisection (the plain baseline).

    Returns the passing candidate, or the best-scoring one tried when even
    the top quality misses (check with :meth:`Evaluator.met`).
    """
    lo0, hi0 = ev.quality_range(config)
    lo, hi = (lo0 if low is None else low), (hi0 if high is None else high)
    best: Encoded | None = None
    top: Encoded | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = ev.encode(config, mid)
        if top is None or ev.value(cand) > ev.value(top):
            top = cand
        if ev.met(cand):
            best, hi = cand, mid - 1
        else:
            lo = mid + 1
    if best is None:
        assert top is not None
        if top.params["quality"] < hi0:  # make sure the top setting was tried
            cand = ev.encode(config, hi0)
            top = cand if ev.value(cand) > ev.value(top) else top
        return top
    return best


def bytes_cap_search(ev: Evaluator, config: str, max_bytes: int, *, high: int | None = None) -> Encoded | None:
    """Highest quality of ``config`` (up to ``high``) whose output fits ``max_bytes``; None if none fits."""
    lo, hi = ev.quality_range(config)
    if high is not None:
        hi = min(hi, high)
    best: Encoded | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = ev.encode(config, mid, score=False)
        if cand.size <= max_bytes:
            best, lo = cand, mid + 1
        else:
            hi = mid - 1
    if best is not None and ev.target is not None:
        best = ev.encode(config, best.params["quality"])
    return best


def oracle(ev: Evaluator, configs: Sequence[str], *, scan_below: int = 3) -> tuple[Encoded | None, dict[str, Any]]:
    """Fewest bytes meeting the target over ``configs`` x every quality (the truth for benchmarks).

    Per configuration: bisection for the smallest passing quality, then the
    ``scan_below`` qualities under it are tried too (scores are not strictly
    monotone in quality).  Returns the best passing candidate (None when no
    configuration reaches the target) and per-configuration details.
    """
    best: Encoded | None = None
    per: dict[str, Any] = {}
    for c in configs:
        e = bisect_quality(ev, c)
        if not ev.met(e):
            per[c] = None
            continue
        q = e.params["quality"]
        lo, _ = ev.quality_range(c)
        for qq in range(q - 1, max(lo, q - scan_below) - 1, -1):
            cand = ev.encode(c, qq)
            if ev.met(cand) and cand.size < e.size:
                e = cand
        per[c] = {"quality": e.params["quality"], "bytes": e.size}
        if best is None or e.size < best.size:
            best = e
    return best, per


def predicted_search(ev: Evaluator, curves: Mapping[str, Any], *, max_decode_ms: float | None = None,
                     aim_margin: float | None = None, select_margin: float | None = None,
                     up_margin: float | None = None, down_margin: float | None = None,
                     down_gain: float | None = None, down_min: float | None = None, max_down: int | None = None,
                     share: float | None = None, slow_penalty: float | None = None,
                     cross: bool | None = None, max_step_up: int | None = None,
                     max_steps: int = MAX_STEPS, calibration: Calibration | None = None) -> tuple[Encoded | None, dict]:
    """The learned path: predicted configuration and quality, verified and corrected by measurement.

    1. Plan: per configuration, the lowest quality whose predicted score
       reaches the target plus ``aim_margin``; configurations are ranked by
       predicted bytes at the target plus ``select_margin`` (a configuration
       whose curve is flat near the target, so that a small score error
       costs many quality steps, ranks lower).  The best is encoded and
       measured.
    2. Correct: the measured score and size shift that configuration's
       curves; the other configurations' curves are shifted by ``share`` of
       the same (errors are largely per image).
    3. Missed: step up to the corrected crossing of the target plus
       ``up_margin`` (in the same or, with ``cross``, a configuration now
       predicted smaller), within the measured bracket and at most
       ``max_step_up`` qualities above the failing one before anything has
       passed.
    4. Met on the first encode: when the corrected curves predict a file
       smaller by at least ``down_gain`` (share of the measured size) at the
       target plus ``down_margin``, and the measured score is at least
       ``down_min`` above the target, encode it (at most ``max_down``
       times); it is kept only if it meets the target too.

    Parameters
    ----------
    ev : Evaluator
    curves : mapping
        Configuration -> :class:`~precodec.tuners.predictor.Curve` (only the
        allowed configurations).  Their ``offset`` is updated in place.
    max_decode_ms : float, optional
        Candidates whose measured decode time exceeds this are rejected.
    aim_margin, select_margin, up_margin, down_margin, down_gain, down_min, max_down, share, slow_penalty, cross,
    max_step_up
        Search constants; None takes the module default for the target's
        format and target band (:data:`SEARCH_SETTINGS`), tuned on held-out training images.
    max_steps : int
        Encodes the search may spend before giving up.
    calibration : Calibration, optional
        A batch's running correction: the first aim starts from its offset,
        and the first encode's error is added to it.

    Returns
    -------
    (Encoded or None, dict)
        The passing candidate with the fewest bytes found (None: no
        configuration reached the target within ``max_steps`` encodes) and
        what was predicted (for the decision record).
    """
    assert ev.target is not None
    T = ev.target.value
    fmt = CONFIGS[next(iter(curves))].format if curves else "jpeg"
    band = target_band(T)
    cfg = dict(SEARCH_SETTINGS.get((fmt, band)) or SEARCH_SETTINGS.get((fmt, "low")) or SEARCH_SETTINGS[("jpeg", band)])
    for k, v in (("aim_margin", aim_margin), ("select_margin", select_margin), ("up_margin", up_margin),
                 ("down_margin", down_margin), ("down_gain", down_gain), ("down_min", down_min),
                 ("max_down", max_down), ("share", share), ("slow_penalty", slow_penalty),
                 ("cross", cross), ("max_step_up", max_step_up)):
        if v is not None:
            cfg[k] = v
    fmt_of = {n: CONFIGS[n].format for n in curves}
    cal = {f: (calibration.offset(f, band) if calibration is not None else 0.0) for f in set(fmt_of.values())}
    ranges = {n: ev.quality_range(n) for n in curves}
    own: dict[str, tuple[float, float]] = {}  # measured (score offset, log-bytes offset) per configuration
    last: tuple[float, float] | None = None
    fail_q: dict[str, int] = {}
    pass_q: dict[str, int] = {}
    banned: set[str] = set()
    done: set[tuple[str, int]] = set()

    def correct(n: str) -> tuple[Any, float]:
        cv = curves[n]
        if n in own:
            cv.offset, lb = own[n]
        elif last is not None:
            cv.offset, lb = cfg["share"] * last[0] + (1 - cfg["share"]) * cal[fmt_of[n]], cfg["share"] * last[1]
        else:
            cv.offset, lb = cal[fmt_of[n]], 0.0
        return cv, lb

    def propose(n: str, margin: float) -> tuple[int, int, float] | None:
        """(tier, quality, predicted bytes) of configuration ``n`` aiming at the target + ``margin``."""
        if n in banned:
            return None
        cv, lb = correct(n)
        lo, hi = ranges[n]
        f, p = fail_q.get(n, lo - 1), pass_q.get(n, hi + 1)
        if p - f <= 1:
            return None
        q = cv.quality_for(T + margin, low=lo, high=hi)
        # unmeasured: never aim past the model's grid (its extrapolated top is a guess)
        top = hi if n in own else min(hi, int(cv.quality[-1]))
        tier = 0 if q <= top else 1
        q = min(q, top)
        if q <= f:
            q = f + 1
        if n in fail_q and n not in pass_q and cfg["max_step_up"]:
            q = min(q, f + int(cfg["max_step_up"]))
        if q >= p:
            q = (f + p) // 2 if n in fail_q else p - 1
        q = min(max(q, lo), hi)
        if not f < q < p or (n, q) in done:
            return None
        return tier, q, float(np.exp(np.log(cv.bytes_at(q)) + lb))

    def plan(margin: float, only: str | None = None) -> list[tuple[int, float, str, int]]:
        out = []
        for n in curves:
            if only is not None and n != only:
                continue
            extra = 0.0 if n in own else cfg["select_margin"] - (cfg["aim_margin"] if last is None else 0.0)
            r = propose(n, margin)
            if r is None:
                continue
            rs = propose(n, margin + extra) if extra else r
            tier, q, b = r
            if rs is not None:  # rank by the size at the (safer) selection margin
                tier, b = max(tier, rs[0]), rs[2]
            if CONFIGS[n].backend in SLOW_BACKENDS:  # ranks as if this much larger: its encodes cost time
                b *= 1 + cfg.get("slow_penalty", 0.0)
            out.append((tier, b, n, q))
        out.sort()
        return out

    first = plan(cfg["aim_margin"])
    info: dict[str, Any] = {
        "band": band,
        "plan": [{"config": n, "quality": q, "bytes": int(round(b)), "reaches": t == 0,
                  "score": round(curves[n].score_at(q), 2)} for t, b, n, q in first[:4]],
    }
    if calibration is not None:
        info["calibration"] = {f: {"offset": round(v, 3), "images": calibration.count(f, band)} for f, v in cal.items()}
    if not first:
        info["steps"] = 0
        return None, info
    _, _, name, q = first[0]
    info.update(config=name, quality=q, score=round(curves[name].score_at(q), 2),
                bytes=int(round(curves[name].bytes_at(q))))
    best: Encoded | None = None
    steps = downs = 0
    missed = False
    while steps < max_steps:
        cv, _ = correct(name)
        raw = cv.score_at(q) - cv.offset
        pred = raw + cv.offset
        e = ev.encode(name, q)
        done.add((name, q))
        steps += 1
        s = ev.value(e)
        if steps == 1:
            if calibration is not None:
                calibration.add(fmt_of[name], band, s - raw)
            if abs(s - pred) > UNRELIABLE:
                info.update(steps=steps, unreliable=round(s - pred, 2))
                return None, info
        own[name] = last = (s - raw, float(np.log(max(e.size, 1)) - np.log(cv.bytes_at(q))))
        nxt: list[tuple[int, float, str, int]] = []
        if max_decode_ms is not None and e.decode_ms is not None and e.decode_ms > max_decode_ms:
            ev.record.notes.append(f"{name} q={q}: decode {e.decode_ms:.1f} ms > budget {max_decode_ms} ms")
            banned.add(name)
            nxt = [c for c in plan(cfg["up_margin"] if missed else cfg["aim_margin"]) if c[0] == 0]
        elif ev.met(e):
            pass_q[name] = min(q, pass_q.get(name, q))
            if best is None or e.size < best.size:
                best = e
            if missed or downs >= cfg["max_down"]:
                break
            cands = plan(cfg["down_margin"], only=None if cfg["cross"] else name)
            over = s - T
            nxt = [c for c in cands if c[0] == 0 and c[1] < (1 - cfg["down_gain"]) * best.size
                   and (c[2] != name or c[3] < q)] if over >= cfg["down_min"] else []
            if nxt:
                downs += 1
        else:
            fail_q[name] = max(q, fail_q.get(name, q))
            if best is not None:
                break  # a step down missed: keep the passing one
            missed = True
            cands = plan(cfg["up_margin"], only=None if cfg["cross"] else name)
            nxt = [c for c in cands if c[0] == 0] or [c for c in cands if c[2] == name]
        if not nxt:
            break
        _, _, name, q = nxt[0]
    info["steps"] = steps
    return best, info


# -- back-compatible entry point (fixed settings + bisection) --------------
def encode_and_score(codec: Any, image: Any, ref: np.ndarray, params: Mapping[str, Any], *, metric: str | None,
                     metadata: Any, record: DecisionRecord) -> Encoded:
    """Encode once, decode, score (when ``metric``), and log the candidate in ``record``."""
    t = time.perf_counter()
    data = codec.encode(image, dict(params), metadata=metadata)
    record.encodes += 1
    record.time_ms["encode"] = record.time_ms.get("encode", 0.0) + (time.perf_counter() - t) * 1e3
    q: dict[str, float] = {}
    if metric:
        t = time.perf_counter()
        dec = np.asarray(codec.decode(data).convert("RGB" if ref.ndim == 3 else "L"))
        q[metric] = float(get_metric(metric)(ref, dec))
        record.metric_runs += 1
        record.time_ms["metric"] = record.time_ms.get("metric", 0.0) + (time.perf_counter() - t) * 1e3
    record.candidates.append({"params": dict(params), "bytes": len(data), **q})
    return Encoded(data, dict(params), q, backend=getattr(codec, "name", ""), format=getattr(codec, "format", ""))


def search_quality(codec: Any, image: Any, ref: np.ndarray, *, target: Target | None, fixed: Mapping[str, Any],
                   max_bytes: int | None, metadata: Any, record: DecisionRecord) -> Encoded:
    """Smallest ``quality`` of one codec at fixed settings meeting ``target`` (bisection), honouring ``max_bytes``."""
    space = codec.space
    base = space.validate(fixed)
    if target is None:
        out = encode_and_score(codec, image, ref, base, metric=None, metadata=metadata, record=record)
        record.reason = "fixed parameters"
        return out
    qp = space["quality"]
    lo, hi = int(qp.low or 0), int(qp.high or 100)
    best: Encoded | None = None
    top: Encoded | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = encode_and_score(codec, image, ref, {**base, "quality": mid}, metric=target.metric,
                                metadata=metadata, record=record)
        ok = target.met(cand.quality[target.metric]) and (max_bytes is None or len(cand.data) <= max_bytes)
        if top is None or cand.quality[target.metric] > top.quality[target.metric]:
            top = cand
        if ok:
            best, hi = cand, mid - 1
        else:
            lo = mid + 1
    if best is None:
        assert top is not None
        record.target_met = False
        record.reason = f"bisection: target {target} not reached; best {target.metric} {top.quality[target.metric]:.2f}"
        return top
    record.target_met = True
    record.reason = f"bisection: smallest quality reaching {target}"
    return best
