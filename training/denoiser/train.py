"""Train precodec's denoiser (torch, CPU, seeded, resumable).

Data: the images listed in ``data.txt`` (relative to ``../shared/datasets/train``;
``val`` lines are held out).  Never Kodak.

Degradations synthesised on the fly from the clean patches:
signal-dependent Poisson-Gaussian sensor noise (std ``sigma`` 1-25 at mid-grey,
variable Poisson fraction, per-channel gains), optional spatially correlated
chroma noise (20%), 8-bit quantisation and, sometimes (10%), JPEG compression of
the noisy input.  5% of the samples are clean (the net must leave them alone).
The noise map the net is given is the true per-channel noise std with a +-10%
jitter (the runtime feeds the classical estimate, which is within about that).
30% of the patches come from the images 2x area-downscaled: cleaner targets.

Loss: L1 + 0.5 * L1 of the horizontal/vertical gradients, so that texture and
edges are rewarded and not averaged away as plain L2 does; optionally
(``--ssim2-weight``) plus the differentiable SSIMULACRA2 error of
``ssim2_torch.py``, the metric the outputs are judged by.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nice -n 10 \\
        /work/venv/bin/python training/denoiser/train.py --steps 6000

Checkpoints go to ``training/runs/denoiser2/`` (gitignored) every 250 steps; the
same command resumes from the last one.  Export with ``export.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ssim2_torch  # noqa: E402
from model import Denoiser, macs_per_pixel, n_params  # noqa: E402

REPO = HERE.parent.parent
DATA_ROOT = REPO.parent / "shared" / "datasets" / "train"
RUN_DIR = REPO / "training" / "runs" / "denoiser2"


def read_list(split: str) -> list[str]:
    out = []
    for line in (HERE / "data.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        s, f = line.split(None, 1)
        if s == split:
            out.append(f)
    return out


def load_images(files: list[str]) -> list[np.ndarray]:
    ims = []
    for f in files:
        with Image.open(DATA_ROOT / f) as im:
            ims.append(np.asarray(im.convert("RGB")))
    return ims


def degrade(clean: np.ndarray, rng: np.random.Generator, sigma_mid: float | None = None,
            train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """clean: (H, W, 3) float32 in [0, 1] -> (noisy float32, per-channel noise std in 1/255)."""
    h, w, _ = clean.shape
    if sigma_mid is None:
        sigma_mid = 0.0 if rng.random() < 0.05 else float(rng.uniform(1.0, 25.0))
    s = sigma_mid / 255.0
    if train:
        alpha = rng.uniform(0.0, 1.0)  # Poisson share of the variance at mid-grey
        gains = rng.uniform(0.8, 1.25, size=3)
    else:
        alpha, gains = 0.5, np.ones(3)
    var = s * s * ((1 - alpha) + alpha * np.clip(clean, 0, 1) / 0.5) * (gains ** 2)
    noise = rng.standard_normal(clean.shape).astype(np.float32) * np.sqrt(var).astype(np.float32)
    if train and sigma_mid > 0 and rng.random() < 0.2:
        # correlated chroma noise: blurred noise on the two colour-difference axes
        amp = rng.uniform(0.2, 1.0) * s
        c = rng.standard_normal((h, w, 2)).astype(np.float32)
        c = cv2.GaussianBlur(c, (0, 0), float(rng.uniform(0.7, 2.0)))
        c *= amp / (c.std() + 1e-8)
        noise[..., 0] += c[..., 0]
        noise[..., 2] += c[..., 1]
        noise[..., 1] -= 0.5 * (c[..., 0] + c[..., 1])
    noisy = np.clip(clean + noise, 0, 1)
    noisy = np.round(noisy * 255) / 255
    sig = (noisy - clean).reshape(-1, 3).std(0) * 255.0
    if train and rng.random() < 0.1:
        q = int(rng.integers(75, 96))
        buf = io.BytesIO()
        Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=q)
        noisy = np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255
    if sigma_mid == 0:
        sig = np.zeros(3)
    return noisy.astype(np.float32), sig.astype(np.float32)


def batch(ims: list[np.ndarray], rng: np.random.Generator, n: int, size: int,
          small: list[np.ndarray] | None = None, p_small: float = 0.0):
    xs, ys, ss = [], [], []
    for _ in range(n):
        pool = small if small is not None and rng.random() < p_small else ims
        im = pool[int(rng.integers(len(pool)))]
        h, w, _ = im.shape
        y0 = int(rng.integers(0, h - size + 1))
        x0 = int(rng.integers(0, w - size + 1))
        p = im[y0:y0 + size, x0:x0 + size].astype(np.float32) / 255
        if rng.random() < 0.5:
            p = p[:, ::-1]
        p = np.rot90(p, int(rng.integers(4))).copy()
        noisy, sig = degrade(p, rng)
        jitter = rng.uniform(0.9, 1.1)
        xs.append(noisy)
        ys.append(p)
        ss.append(sig * jitter)
    t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return t(xs), t(ys), torch.from_numpy(np.stack(ss))


def loss_fn(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    l1 = (out - ref).abs().mean()
    gx = lambda a: a[..., :, 1:] - a[..., :, :-1]  # noqa: E731
    gy = lambda a: a[..., 1:, :] - a[..., :-1, :]  # noqa: E731
    lg = (gx(out) - gx(ref)).abs().mean() + (gy(out) - gy(ref)).abs().mean()
    return l1 + 0.5 * lg


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def make_val(ims: list[np.ndarray], seed: int = 1234):
    """Fixed held-out set: one 192x192 centre crop per image, at sigma 5, 10, 15."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in (5, 10, 15):
        xs, ys, ss = [], [], []
        for im in ims:
            h, w, _ = im.shape
            c = im[h // 2 - 96:h // 2 + 96, w // 2 - 96:w // 2 + 96].astype(np.float32) / 255
            noisy, sig = degrade(c, rng, sigma_mid=float(s), train=False)
            xs.append(noisy), ys.append(c), ss.append(sig)
        t = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        out[s] = (t(xs), t(ys), torch.from_numpy(np.stack(ss)))
    return out


@torch.no_grad()
def evaluate(model: Denoiser, val) -> dict:
    model.eval()
    res = {}
    for s, (x, y, sg) in val.items():
        out = model(x, sg)
        res[f"sigma{s}"] = {"psnr_noisy": round(psnr(x, y), 3), "psnr_denoised": round(psnr(out, y), 3),
                            "ssim2_denoised": round(float(ssim2_torch.score(y, out.clamp(0, 1)).mean()), 3)}
    model.train()
    return res


def grow_body(model: Denoiser, sd: dict) -> list[str]:
    """Load ``sd`` into ``model``, whose body may have more layers than the checkpoint's.

    Each extra body conv starts as the identity (centre tap 1 on its own channel, bias 0). The body's
    layers are conv + ReLU and its input is already non-negative (it follows a ReLU), so an identity
    conv + ReLU passes it through unchanged: the grown net computes exactly what the checkpoint did, and
    training goes on from there with the added capacity. Returns the names of the layers added.
    """
    res = model.load_state_dict(sd, strict=False)
    if res.unexpected_keys or any(not k.startswith("body.") for k in res.missing_keys):
        raise SystemExit(f"--init-from does not fit this architecture: missing {res.missing_keys}, "
                         f"unexpected {res.unexpected_keys}")
    grown = sorted({k.rsplit(".", 1)[0] for k in res.missing_keys})
    with torch.no_grad():
        for name in grown:
            conv = model.get_submodule(name)
            conv.weight.zero_()
            k = conv.kernel_size[0] // 2
            for c in range(conv.out_channels):
                conv.weight[c, c, k, k] = 1.0
            conv.bias.zero_()
    return grown


def state_dict_from_onnx(path: str) -> dict:
    """:class:`Denoiser` weights from an exported model (``PhaseCore`` layout: padded first and last convs)."""
    import onnx
    from onnx import numpy_helper

    sd = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}
    sd["head.0.weight"] = sd["head.0.weight"][:, :15].contiguous()
    sd["tail.2.weight"] = sd["tail.2.weight"][:12].contiguous()
    sd["tail.2.bias"] = sd["tail.2.bias"][:12].contiguous()
    return sd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=24000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--c1", type=int, default=24)
    ap.add_argument("--c2", type=int, default=48)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--nh", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default=str(RUN_DIR))
    ap.add_argument("--init-from", default=None,
                    help="start a new run from the model weights of this checkpoint (fresh optimizer and "
                         "schedule; ignored when the run already has a checkpoint to resume)")
    ap.add_argument("--ssim2-weight", type=float, default=0.0,
                    help="add this times the differentiable SSIMULACRA2 error (ssim2_torch.weighted, the metric's "
                         "weighted sum before its final mapping) of the output against the clean patch to the loss")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--p-small", type=float, default=0.3,
                    help="share of patches cut from 2x area-downscaled images: cleaner targets (BSDS carries "
                         "film grain and JPEG noise that a net trained to reproduce it learns to keep)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = Denoiser(args.c1, args.c2, args.n, args.nh)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    step = 0
    ck = run / "last.pt"
    history: list[dict] = []
    if ck.exists():
        state = torch.load(ck, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        history = state.get("history", [])
        print(f"resumed at step {step}", flush=True)
    elif args.init_from:
        sd = (state_dict_from_onnx(args.init_from) if args.init_from.endswith(".onnx")
              else torch.load(args.init_from, weights_only=False)["model"])
        grown = grow_body(model, sd)
        print(f"initialised from {args.init_from}"
              + (f" (new body layers {grown} start as the identity)" if grown else ""), flush=True)
    print(f"params {n_params(model)} macs/px {macs_per_pixel(model):.0f}", flush=True)
    train_ims = load_images(read_list("train"))
    small = [cv2.resize(im, (im.shape[1] // 2, im.shape[0] // 2), interpolation=cv2.INTER_AREA)
             for im in train_ims]
    small = [im for im in small if min(im.shape[:2]) >= args.patch]
    val = make_val(load_images(read_list("val")))
    t0 = time.time()
    run_loss = 0.0
    while step < args.steps:
        lr = 1e-5 + 0.5 * (args.lr - 1e-5) * (1 + math.cos(math.pi * step / args.steps))
        lr *= min(1.0, (step + 1) / max(args.warmup, 1))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, sg = batch(train_ims, rng, args.batch, args.patch, small, args.p_small)
        out = model(x, sg)
        loss = loss_fn(out, y)
        if args.ssim2_weight:
            loss = loss + args.ssim2_weight * ssim2_torch.weighted(y, out).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss += loss.item()
        if step % 50 == 0 or step == 10:
            print(f"step {step} loss {run_loss / 50:.5f} lr {lr:.2e} {time.time() - t0:.0f}s", flush=True)
            run_loss = 0.0
        if step % 500 == 0 or step == args.steps:
            ev = evaluate(model, val)
            history.append({"step": step, **ev})
            print(json.dumps(history[-1]), flush=True)
        if step % 250 == 0 or step == args.steps:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                     "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                     "history": history, "args": vars(args)}
            torch.save(state, run / "tmp.pt")
            (run / "tmp.pt").replace(ck)
    print("done", flush=True)


if __name__ == "__main__":
    main()
