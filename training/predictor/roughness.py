"""How far real score-versus-quality curves are from the straight lines between the label grid's qualities.

The labels (make_labels.py) hold SSIMULACRA2 at the qualities of
:data:`precodec.tuners.space.GRIDS` only; tune_search.py interpolates
linearly between them.  This labels a few clean training views at every
quality of the grid's range (JPEG: libjpeg-turbo 4:4:4 and mozjpeg 4:2:0,
40-97; AVIF: 4:4:4 and 4:2:0, 35-95) and reports, per stretch between grid
qualities, the true score minus the grid-linear one: its mean (curvature)
and rms (what ``tune_search.py --jitter`` simulates).  Training
images only (the first ``--views`` of the ``down768`` and ``crop512q`` views,
sorted by name); JPEG about 12 s per view on one core, AVIF about 60 s.

    python training/predictor/roughness.py [--format jpeg|avif] [--views 28] [--out roughness.json]

Measured 2026-12-03.  JPEG, 28 views: rms 0.58/0.65 (turbo 4:4:4 / mozjpeg
4:2:0) at qualities 41-54, 0.27-0.68 at 56-79, 0.11-0.36 at 81-96; the second
difference from one quality to the next 0.46/0.70 rms (``--jitter 0.3``).
AVIF, ``--views 10``: rms 0.95 at 36-49, 0.34-0.66 at 51-79, 0.17-0.38 at
81-94; second difference 1.24/1.27 (``--jitter 0.45``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_labels import load_item, training_items  # noqa: E402

CONFIGS_MEASURED = {"jpeg": ("jpeg:444", "mozjpeg:420"), "avif": ("avif:444", "avif:420")}


def qualities(fmt: str) -> np.ndarray:
    """Every quality from the grid's first to its last."""
    from precodec.tuners.space import GRIDS

    return np.arange(GRIDS[fmt][0], GRIDS[fmt][-1] + 1)


def dense_scores(views: int, fmt: str = "jpeg") -> dict[str, dict[str, list[float]]]:
    from precodec.metrics.ssimulacra2 import Ssimulacra2Reference
    from precodec.plugins import get_codec
    from precodec.tuners.space import CONFIGS

    items = sorted(i for i in training_items() if i[2] in ("down768", "crop512q"))[:views]
    out: dict[str, dict[str, list[float]]] = {}
    for iid, path, tr in items:
        im = load_item(path, tr)
        ref = Ssimulacra2Reference(np.asarray(im), threads=1)
        out[iid] = {}
        for name in CONFIGS_MEASURED[fmt]:
            c = CONFIGS[name]
            codec = get_codec(c.backend)
            out[iid][name] = [round(float(ref.score(np.asarray(codec.decode(
                codec.encode(im, {**c.params, "quality": int(q)})).convert("RGB")))), 4) for q in qualities(fmt)]
        print(iid, flush=True)
    return out


def report(dense: dict[str, dict[str, list[float]]], fmt: str = "jpeg") -> dict:
    """Per configuration and stretch between grid qualities: mean and rms of the true minus the grid-linear score."""
    from precodec.tuners.space import GRIDS

    grid = np.array(GRIDS[fmt], float)
    qs = qualities(fmt)
    q0 = int(qs[0])
    stretches = [(int(a) + 1, int(b) - 1) for a, b in zip(grid[:-1], grid[1:]) if b - a > 1]
    res: dict = {}
    for name in CONFIGS_MEASURED[fmt]:
        diffs, second = [], []
        for rec in dense.values():
            y = np.maximum.accumulate(np.asarray(rec[name], float))
            diffs.append(y - np.interp(qs, grid, np.interp(grid, qs, y)))
            second.append(np.diff(y, 2))
        d = np.stack(diffs)
        res[name] = {"views": len(dense), "second_difference_rms": round(float(np.sqrt(np.mean(np.square(second)))), 3),
                     "stretches": {f"{lo}-{hi}": {"mean": round(float(d[:, lo - q0:hi - q0 + 1].mean()), 3),
                                                  "rms": round(float(np.sqrt(np.mean(d[:, lo - q0:hi - q0 + 1] ** 2))), 3)}
                                   for lo, hi in stretches}}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=28)
    ap.add_argument("--format", default="jpeg", choices=sorted(CONFIGS_MEASURED))
    ap.add_argument("--out", type=Path, default=None, help="also write the dense scores and the report here")
    args = ap.parse_args(argv)
    dense = dense_scores(args.views, args.format)
    res = report(dense, args.format)
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"report": res, "dense": dense}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
