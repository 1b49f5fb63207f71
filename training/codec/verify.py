"""Check an export against its checkpoint on a few training images (never Kodak).

Prints, per rate point, the ideal rate of the float torch model (noise-free
rounding, continuous means/scales) against the real ``.pcl`` stream size of
the shipped ONNX/fixed-point runtime, and the PSNR of both decodes.

    /work/venv/bin/python training/codec/verify.py --ckpt training/runs/codec/last.pt
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import LAMBDAS, HyperCodec, ideal_code  # noqa: E402
from train import DEFAULT_DATA, load_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=ROOT / "training" / "runs" / "codec" / "last.pt")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--model", default=None, help="shipped model the checkpoint was exported as (default: the default model)")
    args = ap.parse_args(argv)
    from precodec import learned

    state = torch.load(args.ckpt, weights_only=False, map_location="cpu")
    model = HyperCodec(int(state["args"].get("N", 48)), int(state["args"].get("M", 64)),
                       Ns=int(state["args"].get("Ns", 0)) or None)
    model.load_state_dict(state["model"])
    model.eval()
    imgs, names = load_images(DEFAULT_DATA)
    pick = np.random.default_rng(1).choice(len(imgs), args.images, replace=False)
    for r in range(len(LAMBDAS)):
        ideal, real, p_t, p_r = [], [], [], []
        for j in pick:
            im = imgs[j]
            h, w = (im.shape[0] // 64) * 64, (im.shape[1] // 64) * 64
            im = np.ascontiguousarray(im[:h, :w])
            x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
            bits, xh = ideal_code(model, x, r)
            mse_t = ((xh * 255).round() - x * 255).pow(2).mean().item()
            data = learned.encode(im, rate=r, model=args.model)
            out = np.asarray(learned.decode(data)).astype(np.float64)
            mse_r = ((out - im) ** 2).mean()
            ideal.append(bits / (h * w))
            real.append(len(data) * 8 / (h * w))
            p_t.append(10 * math.log10(255**2 / mse_t))
            p_r.append(10 * math.log10(255**2 / mse_r))
        print(f"rate {r}: ideal {np.mean(ideal):.4f} bpp, stream {np.mean(real):.4f} bpp "
              f"({100 * (np.mean(real) / np.mean(ideal) - 1):+.2f}%), psnr torch {np.mean(p_t):.2f} runtime {np.mean(p_r):.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
