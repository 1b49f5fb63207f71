"""Compare codec checkpoints on training images (never Kodak): BD-rate against JPEG 4:2:0.

For choosing between fine-tuning runs.  Rates are the torch model's ideal bits (noise-free rounding;
the shipped streams come within ~1% of them, see verify.py), qualities the shipped PSNR and
SSIMULACRA2 of the 8-bit decode; JPEG is Pillow/libjpeg-turbo 4:2:0 at q 10..90 on the same images.
The images are part of what the codec trained on (random 128x128 crops of 477 images for an
813k-parameter model), so this ranks runs; Kodak in benchmarks/bench_learned.py gives the results.

    python training/codec/evaluate.py --ckpt training/runs/codec_s10/last.pt --onnx learned-hp48-v3
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import LAMBDAS, HyperCodec, ideal_code  # noqa: E402
from train import DEFAULT_DATA, load_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_learned import bd_rate  # noqa: E402


def pick(n: int, seed: int = 7) -> list[np.ndarray]:
    imgs, _ = load_images(DEFAULT_DATA)
    out = []
    for j in np.random.default_rng(seed).choice(len(imgs), n, replace=False):
        im = imgs[j]
        h, w = min(512, im.shape[0] // 64 * 64), min(768, im.shape[1] // 64 * 64)
        out.append(np.ascontiguousarray(im[:h, :w]))
    return out


def quality(ref: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    from precodec.metrics import score

    return float(score("psnr", ref, dec)), float(score("ssimulacra2", ref, dec))


def codec_curve(model: HyperCodec, ims: list[np.ndarray]) -> dict:
    out = {"bpp": [], "psnr": [], "ssimulacra2": []}
    for r in range(len(LAMBDAS)):
        b, p, s = [], [], []
        for im in ims:
            x = torch.from_numpy(im).permute(2, 0, 1)[None].float() / 255
            bits, xh = ideal_code(model, x, r)
            dec = (xh[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            ps, s2 = quality(im, dec)
            b.append(bits / (im.shape[0] * im.shape[1]))
            p.append(ps)
            s.append(s2)
        for k, v in zip(("bpp", "psnr", "ssimulacra2"), (b, p, s)):
            out[k].append(float(np.mean(v)))
    return out


def jpeg_curve(ims: list[np.ndarray]) -> dict:
    out = {"bpp": [], "psnr": [], "ssimulacra2": []}
    for q in (10, 20, 30, 40, 50, 65, 80, 90):
        b, p, s = [], [], []
        for im in ims:
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, "JPEG", quality=q, subsampling=2, optimize=True)
            dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            ps, s2 = quality(im, dec)
            b.append(len(buf.getvalue()) * 8 / (im.shape[0] * im.shape[1]))
            p.append(ps)
            s.append(s2)
        for k, v in zip(("bpp", "psnr", "ssimulacra2"), (b, p, s)):
            out[k].append(float(np.mean(v)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, nargs="*", default=[], help="training checkpoints (last.pt)")
    ap.add_argument("--onnx", nargs="*", default=[], help="shipped model names (rebuilt with from_onnx.py; their "
                                                          "hyper-prior is refitted for 300 steps)")
    ap.add_argument("--images", type=int, default=12)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ims = pick(args.images)
    jp = jpeg_curve(ims)
    models: list[tuple[str, HyperCodec]] = []
    for c in args.ckpt:
        st = torch.load(c, weights_only=False, map_location="cpu")
        m = HyperCodec(int(st["args"]["N"]), int(st["args"]["M"]), Ns=int(st["args"].get("Ns", 0)) or None)
        m.load_state_dict(st["model"])
        models.append((f"{c} (step {st['step']})", m))
    for name in args.onnx:
        from from_onnx import state_from_onnx
        from train import batch

        m, _ = state_from_onnx(name)
        imgs, _ = load_images(DEFAULT_DATA)
        rng = np.random.default_rng(0)
        opt = torch.optim.Adam(m.prior.parameters(), lr=5e-3)
        for _ in range(300):
            x = batch(imgs, rng, 8, 128)
            r = torch.from_numpy(rng.integers(0, len(LAMBDAS), 8))
            with torch.no_grad():
                z = m.h_a(m.g_a(x) * torch.exp(m.log_gain[r])[:, :, None, None])
            loss = -torch.log2(m.prior.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5)).clamp_min(1e-9)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        models.append((name, m))
    for name, m in models:
        m.eval()
        c = codec_curve(m, ims)
        bp = bd_rate(jp["bpp"], jp["psnr"], c["bpp"], c["psnr"])
        bs = bd_rate(jp["bpp"], jp["ssimulacra2"], c["bpp"], c["ssimulacra2"])
        print(f"{name}: BD vs JPEG 4:2:0 PSNR {bp:+.2f}% SSIMULACRA2 {bs:+.2f}%", flush=True)
        print("   bpp " + " ".join(f"{v:.3f}" for v in c["bpp"]), flush=True)
        print("   psnr " + " ".join(f"{v:.2f}" for v in c["psnr"]), flush=True)
        print("   ssim2 " + " ".join(f"{v:.2f}" for v in c["ssimulacra2"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
