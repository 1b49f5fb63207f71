"""Tune the verify-and-correct constants of :func:`precodec.tuners.search.predicted_search`.

Simulates the learned path on the *held-out training images* (never Kodak):
the "encoder" is the labelled curve of each image (scores and sizes on the
quality grid, interpolated), the predictor is the shipped ONNX model.  For
each setting of (aim margin, step margin, refine gain) it reports the mean
encodes per image, the hit rate and the bytes over the simulated oracle.

    python training/predictor/tune_search.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import LABELS, FEATS, held_out, load_rows  # noqa: E402


class SimEvaluator:
    def __init__(self, row: dict, fmt: str, target: float) -> None:
        from precodec.record import DecisionRecord
        from precodec.targets import Target
        from precodec.tuners.space import CONFIGS, GRIDS

        self.row, self.fmt = row, fmt
        self.grid = np.array(GRIDS[fmt], float)
        self.target = Target("ssimulacra2", float(target))
        self.record = DecisionRecord()
        self.configs = CONFIGS

    def true(self, name: str, q: int) -> tuple[float, float]:
        c = self.configs[name]
        s = np.interp(q, self.grid, np.maximum.accumulate(self.row["scores"][c.score_name]))
        if q > self.grid[-1]:
            sc = self.row["scores"][c.score_name]
            s = sc[-1] + (q - self.grid[-1]) * (sc[-1] - sc[-2]) / (self.grid[-1] - self.grid[-2])
        b = float(np.exp(np.interp(q, self.grid, np.log(self.row["bytes"][name]))))
        return float(s), b

    def quality_range(self, name: str) -> tuple[int, int]:
        return 1, 100

    def encode(self, name: str, q: int, *, score: bool = True):
        from precodec.tuners.search import Encoded

        s, b = self.true(name, q)
        self.record.encodes += 1
        e = Encoded(b"x" * int(b), {"quality": q}, {"ssimulacra2": s}, name)
        return e

    def met(self, e) -> bool:
        return e.quality["ssimulacra2"] >= self.target.value

    def value(self, e) -> float:
        return e.quality["ssimulacra2"]

    def oracle(self, names) -> float:
        best = None
        for n in names:
            for q in range(int(self.grid[0]), 101):
                s, b = self.true(n, q)
                if s >= self.target.value:
                    best = b if best is None else min(best, b)
                    break
        return best


def main() -> int:
    from precodec.tuners import predictor
    from precodec.tuners.search import predicted_search
    from precodec.tuners.space import BYTES_CONFIGS

    rows = [r for r in load_rows(LABELS) if held_out(r["id"])]
    z = np.load(FEATS)
    feats = dict(zip(z["ids"].tolist(), z["feats"]))
    for fmt in ("jpeg", "avif"):
        rs = [r for r in rows if all(c in r["bytes"] for c in BYTES_CONFIGS[fmt])]
        print(f"{fmt}: {len(rs)} held-out images")
        for aim, step, gain, ram in itertools.product((0.0, 0.5, 1.0), (0.3,), (0.03, 0.05, 0.08, 0.12, 1.0),
                                                      (False,)):
            enc, over, hits, n = [], [], 0, 0
            for r in rs:
                for t in (60, 70, 80, 90):
                    ev = SimEvaluator(r, fmt, t)
                    orc = ev.oracle(BYTES_CONFIGS[fmt])
                    if orc is None:
                        continue
                    curves = predictor.predict(feats[r["id"]], format=fmt, pixels=r["width"] * r["height"])
                    out, info = predicted_search(ev, curves, aim_margin=aim, step_margin=step, refine_gain=gain,
                                                   refine_after_miss=ram)
                    n += 1
                    enc.append(ev.record.encodes)
                    if out is not None and ev.met(out):
                        hits += 1
                        over.append(out.size / orc - 1)
            print(f"  aim {aim:+.1f} step {step:.1f} gain {gain:.3f} after-miss {ram:d}: encodes {np.mean(enc):.2f} "
                  f"hit {hits}/{n} bytes over oracle {100 * np.mean(over):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
