"""Pick the default denoising strength on held-out *training* images (never Kodak).

For the 'val' images of data.txt (centre crops 384x384 or the whole image if smaller)
with sensor noise at sigma 5/10/15, run precodec's clean path at several strengths and
report the mean SSIMULACRA2 against the clean image, unencoded and after JPEG q75/q90
(as ``[unencoded, bytes q75, score q75, bytes q90, score q90]``), and how many
images the fidelity guard sent back to the plain path (``fallbacks``).  The
strengths here multiply the raw estimate (``precodec.preproc.SIGMA_GAIN`` is set to
1 for the run); the best ones became ``SIGMA_GAIN``.  Results are written to
``tune_strength.json`` beside this script.

Usage: OMP_NUM_THREADS=1 /work/venv/bin/python training/denoiser/tune_strength.py
(the committed ``tune_strength.json``, denoiser 2.5.0: ``--strengths 0.8 0.9 1.0 1.1``)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "benchmarks"))
from train import load_images, read_list  # noqa: E402
from bench_denoise import QUALITIES, bd_rate, curve, jpeg, sensor_noise, worst_rate  # noqa: E402

from precodec.metrics.ssimulacra2 import Ssimulacra2Reference  # noqa: E402
import precodec.preproc  # noqa: E402
from precodec.preproc import preprocess  # noqa: E402

STRENGTHS = (0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0)


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strengths", type=float, nargs="+", default=list(STRENGTHS))
    ap.add_argument("--sigmas", type=int, nargs="+", default=[5, 10, 15])
    args = ap.parse_args()
    strengths = tuple(args.strengths)
    precodec.preproc.SIGMA_GAIN = ((5.0, 1.0), (10.0, 1.0))  # raw multipliers of the estimate
    ims = load_images(read_list("val"))[::2]
    out = {}
    for sigma in args.sigmas:
        acc = {s: [] for s in ("plain",) + strengths}
        curves = {s: [] for s in ("plain",) + strengths}
        fallbacks = {s: 0 for s in strengths}
        for i, im in enumerate(ims):
            h, w = im.shape[:2]
            c = im[max(0, h // 2 - 192):h // 2 + 192, max(0, w // 2 - 192):w // 2 + 192]
            noisy = sensor_noise(c, sigma, seed=i)
            ref = Ssimulacra2Reference(c)
            variants = {"plain": noisy}
            for s in strengths:
                p = preprocess(Image.fromarray(noisy), noisy, denoise="clean", strength=s, threads=1)
                fallbacks[s] += not p.applied
                variants[s] = p.reference
            for k, a in variants.items():
                cv = curve(ref, a)
                curves[k].append(cv)
                n90, d90 = jpeg(a, 90)  # q75 is on the curve's grid, q90 is not
                acc[k].append([ref.score(a), *cv[QUALITIES.index(75)], n90, ref.score(d90)])
        out[sigma] = {str(k): np.mean(v, axis=0).round(2).tolist() for k, v in acc.items()}
        # the benchmark's criteria on these held-out images: BD-rate against plain JPEG over the mean curves
        # (bench_denoise.QUALITIES), the worst bytes difference at equal quality, the best quality reached
        mean = {k: [(float(np.mean([c[j][0] for c in v])), float(np.mean([c[j][1] for c in v])))
                    for j in range(len(v[0]))] for k, v in curves.items()}
        out[sigma]["bd"] = {
            str(k): {"bd_rate_vs_plain_pct": round(bd_rate(mean["plain"], mean[k]), 2),
                     "worst_vs_plain_pct": round(worst_rate(mean["plain"], mean[k]), 2),
                     "best_quality": round(float(np.mean([max(q for _, q in c) for c in curves[k]])), 2)}
            for k in strengths}
        out[sigma]["fallbacks"] = {str(k): v for k, v in fallbacks.items()}
        out[sigma]["images"] = len(ims)
        print(sigma, json.dumps(out[sigma]), flush=True)
    from precodec import models

    out["model"] = {"name": "denoiser", "sha256": models.manifest("denoiser")["sha256"]}
    out["columns"] = ["unencoded", "bytes q75", "ssimulacra2 q75", "bytes q90", "ssimulacra2 q90"]
    out["bd_note"] = ("'bd': per strength, BD-rate and worst bytes difference against plain JPEG at equal SSIMULACRA2 "
                      "(mean curves over bench_denoise.QUALITIES, 4:2:0) and the mean best quality reached")
    (HERE / "tune_strength.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
