"""Fit budget mode's level table (tuners/zstd/budget_table.py) from measured Zstd runs.

For 256 KiB slices of the *training* sources (whole sources held out for
judging: see HELD_OUT) it measures the cheap features of
:func:`precodec.tuners.zstd.budget.features` and, at every ladder level, the
compression speed relative to level 1 and the ratio relative to level 1; then
fits (speeds in CPU time, as budget mode measures them), per level, least-squares coefficients of ``log(relative speed)`` and
``log(relative ratio)`` on the feature vector ``[1, log ratio1, entropy/8, text]``.

Command (about 2 minutes on 2 cores)::

    nice python training/zstd/fit_budget.py --data ../shared/datasets/data --out tuners/zstd/budget_table.py

``--sampling`` calibrates the plan-once design instead (and adds the ``sampling`` entry to the existing
table): on the same training sources it compresses the strided planning sample
(:func:`precodec.tuners.zstd.budget.plan_sampled`) and the whole input (one frame, 1 MiB at a time, as budget
mode writes it) at every level up to 19, in CPU time, and keeps

* ``speed_factor``: per level, the median of whole-input speed / sample speed over the sources (a sample's
  small working set runs faster than a whole input: 0.4-0.9);
* ``margin``: the safety margin that covers 90% of the (source, level) pairs of levels -5..12 around their
  level's factor;
* ``ratio_gain``: per level, the median of whole-input ratio / sample ratio (the history a whole input has);
* ``gain_exponent_l3``: per level, ``a`` in ``gain = g3 ** a``, where ``g3`` is level 3's own whole/sample gain
  (ratio budgets measure it with one whole-input pass at level 3 when the level they need is slow).

Command (about 3 minutes)::

    nice python training/zstd/fit_budget.py --data ../shared/datasets/data --sampling
"""

from __future__ import annotations

import argparse
import bz2
import json
import math
import os
import sys
import time

import numpy as np
import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
from gen_zstd_data import numeric_columns, telemetry_records  # noqa: E402

from precodec.tuners.zstd.budget import LADDER, SAMPLE, features  # noqa: E402

TRAIN_SILESIA = ["dickens", "mr", "osdb"]
TRAIN_LOGHUB = ["Android", "Apache", "BGL", "HDFS", "HPC", "Hadoop", "HealthApp", "Linux"]
HELD_OUT = {"silesia": ["nci", "xml"],
            "loghub": ["Mac", "OpenSSH", "OpenStack", "Proxifier", "Spark", "Thunderbird", "Windows", "Zookeeper"],
            "synthetic": ["telemetry seed 1", "numeric columns seed 2"]}


def sources(data: str) -> dict[str, bytes]:
    out = {}
    for name in TRAIN_SILESIA:
        with open(os.path.join(data, "silesia", name + ".bz2"), "rb") as f:
            out["silesia/" + name] = bz2.decompress(f.read())[: 6 << 20]
    out["loghub/train-concat"] = b"".join(
        open(os.path.join(data, "loghub", n + "_2k.log"), "rb").read() for n in TRAIN_LOGHUB)
    out["synthetic/telemetry-seed101"] = b"".join(telemetry_records(6000, seed=101))
    cols = numeric_columns(300_000, seed=102)
    out["synthetic/columns-seed102"] = b"".join(a.tobytes() for a in cols.values())
    return out


def slices(buf: bytes, n: int = 8) -> list[bytes]:
    if len(buf) <= SAMPLE:
        return [buf]
    starts = np.linspace(0, len(buf) - SAMPLE, n).astype(int)
    return [buf[s:s + SAMPLE] for s in sorted(set(starts.tolist()))]


def timed(c: zstandard.ZstdCompressor, b: bytes) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(2):
        t0 = time.thread_time()  # CPU time of this thread: other processes' load does not count
        n = len(c.compress(b))
        best = min(best, time.thread_time() - t0)
    return best, n


def whole_stream(buf: bytes, lv: int) -> tuple[float, int]:
    """CPU seconds and size of ``buf`` at ``lv`` in one frame, fed 1 MiB at a time (as budget mode writes it)."""
    c = zstandard.ZstdCompressor(level=lv, write_checksum=True)
    o = c.compressobj()
    o.compress(b"\0")
    o.flush()
    o = c.compressobj()
    n = 0
    t0 = time.thread_time()
    for i in range(0, len(buf), 1 << 20):
        n += len(o.compress(buf[i:i + (1 << 20)]))
    n += len(o.flush())
    return time.thread_time() - t0, n


def sampling(data: str, out: str) -> None:
    import io

    from precodec.tuners.zstd import budget as B

    rows = []
    for name, buf in sources(data).items():
        slices = B._strided(io.BytesIO(buf), len(buf))
        p = B.Plan("calibration", level=3)
        for lv in LADDER:
            reps = 3 if lv <= 9 else 1
            tw = [whole_stream(buf, lv) for _ in range(reps)]
            ts = [B._trial(slices, lv, p, True, False) for _ in range(reps)]
            sw = len(buf) / float(np.median([t for t, _ in tw]))
            ss = float(np.median([t.speed for t in ts]))
            rows.append({"source": name, "level": lv, "ks": sw / ss, "gr": (len(buf) / tw[0][1]) / ts[0].ratio,
                         "plan_share": sum(len(x) for x in slices) / len(buf)})
        print(name, len(buf), " ".join(f"{r['level']}:{r['ks']:.2f}/{r['gr']:.3f}" for r in rows[-len(LADDER):]),
              flush=True)
    if os.environ.get("FIT_BUDGET_ROWS"):
        with open(os.environ["FIT_BUDGET_ROWS"], "w") as f:
            json.dump(rows, f)
    # per level: the median whole/sample speed factor; the margin covers 90% of (source, level) pairs of levels
    # -5..12 (the levels speed budgets pick) around their level's factor
    factor = {str(lv): round(float(np.median([r["ks"] for r in rows if r["level"] == lv])), 4) for lv in LADDER}
    dev = np.array([r["ks"] / factor[str(r["level"])] for r in rows if r["level"] <= 12])
    margin = float(1 / np.quantile(dev, 0.10) - 1)
    gain = {str(lv): round(float(np.median([r["gr"] for r in rows if r["level"] == lv])), 4) for lv in LADDER}
    # once level 3 has run over the whole input, its own whole/sample gain g3 is known; a level's gain follows
    # it as g3 ** a (least squares through the origin in logs, per level, over the sources)
    by = {(r["source"], r["level"]): math.log(r["gr"]) for r in rows}
    names = sorted({r["source"] for r in rows})
    x3 = np.array([by[(nm, 3)] for nm in names])
    exp3 = {}
    for lv in LADDER:
        y = np.array([by[(nm, lv)] for nm in names])
        exp3[str(lv)] = round(float(max(0.0, (x3 @ y) / max(x3 @ x3, 1e-12))), 4)
    cal = {"speed_factor": factor, "margin": round(margin, 4), "ratio_gain": gain,
           "ratio_gain_default": round(float(np.median([r["gr"] for r in rows])), 4), "gain_exponent_l3": exp3,
           "sample": {"slices": B.SAMPLE_SLICES, "fraction": B.SAMPLE_FRACTION, "min": B.SAMPLE_MIN,
                      "max": B.SAMPLE_MAX, "whole_below": B.WHOLE_INPUT},
           "speed_deviation_quantiles": [round(float(np.quantile(dev, q)), 3) for q in (0.1, 0.5, 0.9)]}
    print(json.dumps(cal, indent=1))
    from precodec.tuners.zstd import budget_table

    table = dict(budget_table.TABLE)
    table["sampling"] = cal
    with open(out, "w") as f:
        f.write('"""Budget mode\'s fitted level table (generated by training/zstd/fit_budget.py; do not edit).\n\n'
                "Per level: coefficients of log(speed / level-1 speed) and log(ratio / level-1 ratio) on the\n"
                "feature vector [1, log(ratio1), entropy/8, text share]; ``sampling``: the plan-once design's\n"
                'calibration (fit_budget.py --sampling).\n"""\n\n')
        f.write("TABLE = " + json.dumps(table, indent=1) + "\n")
    print("wrote", out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/datasets/data")
    ap.add_argument("--out", default="tuners/zstd/budget_table.py")
    ap.add_argument("--sampling", action="store_true", help="calibrate the plan-once sample (see the docstring)")
    a = ap.parse_args()
    if a.sampling:
        sampling(a.data, a.out)
        return
    X, Ys, Yr = [], {lv: [] for lv in LADDER}, {lv: [] for lv in LADDER}
    for name, buf in sources(a.data).items():
        for sl in slices(buf):
            f = features(sl)
            t1, n1 = timed(zstandard.ZstdCompressor(level=1, write_checksum=False), sl)
            X.append(f.vector())
            for lv in LADDER:
                t, n = timed(zstandard.ZstdCompressor(level=lv, write_checksum=False), sl)
                Ys[lv].append(np.log(t1 / t))
                Yr[lv].append(np.log(n1 / n))
        print(name, len(X), flush=True)
    Xa = np.array(X)
    table = {"version": 1, "features": ["1", "log(ratio1)", "entropy/8", "text share"],
             "training_sources":
             ["silesia/" + s for s in TRAIN_SILESIA] + ["loghub/" + s for s in TRAIN_LOGHUB] +
             ["synthetic/telemetry seed 101", "synthetic/numeric columns seed 102"],
             "held_out": HELD_OUT, "slices": len(X), "levels": {}}
    try:  # keep the plan-once calibration (made by --sampling) when refitting the level table
        from precodec.tuners.zstd import budget_table

        if "sampling" in budget_table.TABLE:
            table["sampling"] = budget_table.TABLE["sampling"]
    except ImportError:
        pass
    for lv in LADDER:
        ys, yr = np.array(Ys[lv]), np.array(Yr[lv])
        cs = np.linalg.lstsq(Xa, ys, rcond=None)[0]
        cr = np.linalg.lstsq(Xa, yr, rcond=None)[0]
        es = float(np.sqrt(np.mean((Xa @ cs - ys) ** 2)))
        er = float(np.sqrt(np.mean((Xa @ cr - yr) ** 2)))
        table["levels"][str(lv)] = {"speed": [round(float(v), 5) for v in cs],
                                   "ratio": [round(float(v), 5) for v in cr],
                                   "rmse_log_speed": round(es, 4), "rmse_log_ratio": round(er, 4)}
        print(f"level {lv:3d}: speed rel rmse {es:.3f}  ratio rel rmse {er:.4f}")
    with open(a.out, "w") as f:
        f.write('"""Budget mode\'s fitted level table (generated by training/zstd/fit_budget.py; do not edit).\n\n'
                "Per level: coefficients of log(speed / level-1 speed) and log(ratio / level-1 ratio) on the\n"
                'feature vector [1, log(ratio1), entropy/8, text share].\n"""\n\n')
        f.write("TABLE = " + json.dumps(table, indent=1) + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
