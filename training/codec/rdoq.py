"""Fit the learned codec's encoder-side RDOQ table (``precodec/learned/rdoq.json``).

Rate-distortion optimised quantisation: the encoder may move a latent symbol one step toward zero where
that lowers ``w_c * (y - mu - s)^2 + bits(s)``, with ``bits`` the stream's own table for the symbol's
scale index and ``w_c = alpha * lambda_r * 255^2 * J_rc / 3`` the model's training Lagrangian per symbol:
``J_rc`` is the summed squared pixel change (pixels in [0, 1], 3 channels) per squared unit change of latent
channel ``c`` at rate point ``r``, measured by finite differences through the shipped synthesis on
training crops.  The stream format and the decoder are unchanged.

``alpha`` is chosen per model on the 12 training images of ``evaluate.py`` (never Kodak), with real
streams and the runtime decoder: the value with the best BD-rate against JPEG 4:2:0 in the metric the
model is tuned for, among those no worse than plain rounding in the other metric.

    python training/codec/rdoq.py --alphas 4 8 16 --write     # what wrote the shipped table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import jpeg_curve, pick, quality  # noqa: E402
from train import DEFAULT_DATA, load_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_learned import bd_rate  # noqa: E402

OUT = ROOT / "precodec" / "learned" / "rdoq.json"


def sensitivity(m, crops: list[np.ndarray], eps: float = 0.5) -> np.ndarray:
    """J[r, c]: squared pixel change per squared change of one latent of channel c (gained domain)."""
    J = np.zeros((m.n_rates, m.M))
    for r in range(m.n_rates):
        for im in crops:
            x = im.transpose(2, 0, 1)[None].astype(np.float32) / 255
            y = np.rint(m.analysis(x) * m.gain(r))
            base = m.synthesis((y * m.igain(r)).astype(np.float32))
            cy, cx = y.shape[2] // 2, y.shape[3] // 2
            for c in range(m.M):
                yb = y.copy()
                yb[0, c, cy, cx] += eps
                out = m.synthesis((yb * m.igain(r)).astype(np.float32))
                J[r, c] += float(((out - base) ** 2).sum()) / eps**2 / len(crops)
    return J


def curve(m, ims: list[np.ndarray], rdoq) -> dict:
    from precodec import learned

    out = {"bpp": [], "psnr": [], "ssimulacra2": []}
    for r in range(m.n_rates):
        b, p, s = [], [], []
        w = rdoq(r)
        for im in ims:
            data = learned._encode_array(im, "RGB", r, m, rdoq=False if w is None else w)
            dec = np.asarray(learned.decode(data).convert("RGB"))
            ps, s2 = quality(im, dec)
            b.append(len(data) * 8 / (im.shape[0] * im.shape[1]))
            p.append(ps)
            s.append(s2)
        for k, v in zip(("bpp", "psnr", "ssimulacra2"), (b, p, s)):
            out[k].append(float(np.mean(v)))
    return out


def dumps(table: dict) -> str:
    """JSON with each sensitivity row on one line."""
    import re

    return re.sub(r"\[\s*([-0-9.e,\s]+?)\s*\]", lambda mt: "[" + re.sub(r"\s+", " ", mt.group(1)) + "]",
                  json.dumps(table, indent=1)) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=None, help="default: every model in learned.WRITE_MODELS")
    ap.add_argument("--alphas", nargs="*", type=float, default=[4, 8, 16], help="plain rounding (0) is always run")
    ap.add_argument("--crops", type=int, default=8, help="128x128 training crops for the sensitivities")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    from precodec import learned
    from precodec.learned._runtime import get_model

    names = args.models or list(learned.WRITE_MODELS)
    imgs, _ = load_images(DEFAULT_DATA)
    rng = np.random.default_rng(20261203)
    crops = []
    for j in rng.choice(len(imgs), args.crops, replace=False):
        im = imgs[j]
        y0, x0 = (im.shape[0] - 128) // 2, (im.shape[1] - 128) // 2
        crops.append(np.ascontiguousarray(im[y0 : y0 + 128, x0 : x0 + 128]))
    ims = pick(args.images)
    jp = jpeg_curve(ims)
    table = json.loads(OUT.read_text()) if OUT.exists() else {"models": {}}
    for name in names:
        m = get_model(name, threads=1)
        J = sensitivity(m, crops)
        tuned = learned.WRITE_MODELS.get(name, "psnr")
        other = "ssimulacra2" if tuned == "psnr" else "psnr"
        results = {}
        lam = np.asarray(m.codec["lambdas"])
        for a in sorted(set([0.0] + list(args.alphas))):

            def weight(r, a=a):
                return None if a == 0 else (a * lam[r] * 255.0**2 / 3.0 * J[r])[None, :, None, None]

            c = curve(m, ims, weight)
            results[a] = {k: bd_rate(jp["bpp"], jp[k], c["bpp"], c[k]) for k in ("psnr", "ssimulacra2")}
            print(f"{name} alpha {a:g}: BD vs JPEG 4:2:0 PSNR {results[a]['psnr']:+.2f}% "
                  f"SSIMULACRA2 {results[a]['ssimulacra2']:+.2f}%", flush=True)
        ok = [a for a in results if a > 0 and results[a][other] <= results[0.0][other]]
        best = min(ok, key=lambda a: results[a][tuned], default=None)
        if best is not None and results[best][tuned] >= results[0.0][tuned]:
            best = None
        print(f"{name}: alpha {best}", flush=True)
        table["models"].pop(name, None)
        if best is not None:
            table["models"][name] = {
                "alpha": best,
                "sensitivity": [[float(f"{v:.6g}") for v in row] for row in J],
                "chosen_on": f"{args.images} training images of training/codec/evaluate.py, BD-rate against "
                             f"JPEG 4:2:0 in {tuned} (the model's metric), no worse in {other}",
                "measured": {f"{a:g}": {k: round(v, 2) for k, v in r.items()} for a, r in results.items()},
            }
    table["command"] = "python training/codec/rdoq.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table["doc"] = ("Encoder-side RDOQ tables of the learned codec, written by training/codec/rdoq.py; "
                    "they change which symbols an encoder writes, never how a stream decodes.")
    if args.write:
        OUT.write_text(dumps(table))
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
