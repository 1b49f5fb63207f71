"""Train the variable-rate mean-scale hyperprior shipped as precodec's learned codec.

Data: every image under ``../shared/datasets/train`` (bsds432 + wikipedia;
never Kodak), random 128x128 crops with random flips, seeded.  Each sample of
a batch draws a random rate point; loss = lambda_r * (255^2 * MSE + B * E) + bpp, where E is the
differentiable SSIMULACRA2 error of ``training/denoiser/ssim2_torch.py`` (the metric's weighted
sum before its final mapping) and B is ``--ssim2-weight`` (0, the default, trains for MSE alone).

``--init-from NAME`` starts a new run from a shipped model's ONNX files (``from_onnx.py``: only
its factorized hyper-prior is not recoverable; it is fitted first for ``--prior-warmup`` steps with
everything else frozen).

Resumable: a checkpoint is written every ``--ckpt-minutes`` minutes (and at
the end) to ``<run>/last.pt``; rerunning the same command resumes from it.

Command used for the shipped model (2 shared CPU cores, background)::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nice -n 10 \
      /work/venv/bin/python training/codec/train.py --run training/runs/codec \
      --minutes 78 --lr 4e-4 > training/runs/codec.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import LAMBDAS, HyperCodec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "denoiser"))
import ssim2_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "train"


def load_images(root: Path) -> tuple[list[np.ndarray], list[str]]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    files = [p for p in files if "kodak" not in str(p).lower()]
    imgs = []
    for p in files:
        with Image.open(p) as im:
            imgs.append(np.asarray(im.convert("RGB")))
    return imgs, [str(p.relative_to(root)) for p in files]


def batch(imgs, rng: np.random.Generator, bs: int, size: int) -> torch.Tensor:
    out = np.empty((bs, size, size, 3), np.uint8)
    for i in range(bs):
        im = imgs[rng.integers(len(imgs))]
        h, w = im.shape[:2]
        y = rng.integers(0, h - size + 1)
        x = rng.integers(0, w - size + 1)
        c = im[y : y + size, x : x + size]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        if rng.random() < 0.5:
            c = c[::-1]
        out[i] = c
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def widen_state(old: dict, new: dict, gen: torch.Generator) -> dict:
    """Copy a trained state into a model with more latent channels M (same N).

    The wider model starts almost where the old one was: new latent
    channels come out of the analysis and enter the synthesis with small random
    weights (a tenth of the old weights' spread: zero would leave them without a
    gradient) and the hyper-analysis through zero weights; the hyper-synthesis
    predicts mean 0 and the old channels' mean log-scale for them; new hidden
    channels of the hyper-synthesis start random but feed the output through
    zero weights (so they are alive, not dead ReLUs).  Training then learns to
    use the new channels.
    """
    out = {k: v.clone() for k, v in new.items()}
    mo = old["g_a.6.weight"].shape[0]
    mn = new["g_a.6.weight"].shape[0]
    ho = old["h_s.2.weight"].shape[1]
    for k, v in old.items():
        if out[k].shape == v.shape:
            out[k] = v.clone()
    w = old["g_a.6.weight"]
    out["g_a.6.weight"][:mo] = w
    out["g_a.6.weight"][mo:] = torch.randn(out["g_a.6.weight"][mo:].shape, generator=gen) * 0.1 * w.std()
    out["g_a.6.bias"][:mo] = old["g_a.6.bias"]
    out["g_a.6.bias"][mo:] = 0
    w = old["g_s.0.weight"]  # ConvTranspose: (in=M, out=N, k, k); small, not zero, so gradients reach y
    out["g_s.0.weight"][:mo] = w
    out["g_s.0.weight"][mo:] = torch.randn(out["g_s.0.weight"][mo:].shape, generator=gen) * 0.1 * w.std()
    out["h_a.0.weight"].zero_()
    out["h_a.0.weight"][:, :mo] = old["h_a.0.weight"]
    w = old["h_s.2.weight"]  # ConvTranspose: (in=N, out=hidden, k, k)
    out["h_s.2.weight"][:, :ho] = w
    out["h_s.2.weight"][:, ho:] = torch.randn(out["h_s.2.weight"][:, ho:].shape, generator=gen) * w.std()
    out["h_s.2.bias"][:ho] = old["h_s.2.bias"]
    out["h_s.2.bias"][ho:] = old["h_s.2.bias"].mean()
    w, b = old["h_s.4.weight"], old["h_s.4.bias"]  # (2*M, hidden, 1, 1): means then log-scales
    out["h_s.4.weight"].zero_()
    out["h_s.4.bias"].zero_()
    out["h_s.4.weight"][:mo, :ho] = w[:mo]
    out["h_s.4.weight"][mn:mn + mo, :ho] = w[mo:]
    out["h_s.4.bias"][:mo] = b[:mo]
    out["h_s.4.bias"][mn:mn + mo] = b[mo:]
    out["h_s.4.bias"][mn + mo:] = b[mo:].mean()
    for k in ("log_gain", "log_igain"):
        out[k][:, :mo] = old[k]
        out[k][:, mo:] = old[k].mean(1, keepdim=True)
    return out


@torch.no_grad()
def widen_synthesis_state(old: dict, new: dict, gen: torch.Generator) -> dict:
    """Copy a trained state into a model with a wider synthesis (more hidden channels Ns, same M and N).

    Function-preserving: each new hidden channel is fed by the layer before through small random
    weights (a tenth of the old weights' spread, so it is alive) and feeds the next layer through zero
    weights; in the inverse GDNs the new channels normalise only themselves (default initialisation)
    and the old channels ignore them.  The wider model decodes exactly as the old one until training
    moves the zero weights.
    """
    out = {k: v.clone() for k, v in new.items()}
    for k, v in old.items():
        if not k.startswith("g_s."):
            out[k] = v.clone()
    for i in (0, 2, 4, 6):  # ConvTranspose2d weights: (in, out, k, k)
        w, b = old[f"g_s.{i}.weight"], old[f"g_s.{i}.bias"]
        ci, co = w.shape[:2]
        nw = out[f"g_s.{i}.weight"]
        nw.zero_()
        nw[:ci, :co] = w
        if nw.shape[1] > co:
            nw[:ci, co:] = torch.randn(nw[:ci, co:].shape, generator=gen) * 0.1 * w.std()
        out[f"g_s.{i}.bias"].zero_()
        out[f"g_s.{i}.bias"][:co] = b
    for i in (1, 3, 5):  # inverse GDN: old block copied, new channels keep the default initialisation
        c = old[f"g_s.{i}.beta"].shape[0]
        out[f"g_s.{i}.beta"][:c] = old[f"g_s.{i}.beta"]
        out[f"g_s.{i}.gamma"][:c, :c] = old[f"g_s.{i}.gamma"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--run", type=Path, default=ROOT / "training" / "runs" / "codec")
    ap.add_argument("--minutes", type=float, default=60.0, help="stop after this much wall time (this invocation)")
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--N", type=int, default=48)
    ap.add_argument("--M", type=int, default=64)
    ap.add_argument("--Ns", type=int, default=0, help="synthesis width (default N); with --widen-from, a wider "
                    "synthesis than the checkpoint's (see widen_synthesis_state)")
    ap.add_argument("--decay-at", type=float, default=0.8,
                    help="fraction of --minutes after which the learning rate drops to lr/4")
    ap.add_argument("--widen-from", type=Path, default=None,
                    help="start a new run (no last.pt in --run) from this checkpoint of a model with fewer "
                         "latent channels (--M; see widen_state) or a narrower synthesis (--Ns; see "
                         "widen_synthesis_state): its weights are kept and the new channels start with small weights")
    ap.add_argument("--new-channels-from", type=int, default=0,
                    help="latent channels from this index on are new (after --widen-from): their rate is "
                         "weighted by 0.05 until step --new-rate-until, then ramped to 1 by --new-rate-ramp-until, "
                         "so they become useful before the rate term can switch them off")
    ap.add_argument("--new-rate-until", type=int, default=0)
    ap.add_argument("--new-rate-ramp-until", type=int, default=0)
    ap.add_argument("--ssim2-weight", type=float, default=0.0,
                    help="B in lambda_r * (255^2 * MSE + B * E): E is the differentiable SSIMULACRA2 error "
                         "(ssim2_torch.weighted); 10 weighs the two about equally at the middle rate points of "
                         "learned-hp48-v3 (E falls by ~2.2 and 255^2 MSE by ~22 from rate point 2 to 4)")
    ap.add_argument("--init-from", default=None,
                    help="start a new run (no last.pt in --run) from this shipped model's ONNX files "
                         "(e.g. learned-hp48-v3; see from_onnx.py); --N/--M are taken from it.  With --widen-from "
                         "it only names the shipped model that checkpoint is, for the export's manifest")
    ap.add_argument("--prior-warmup", type=int, default=500,
                    help="with --init-from: steps fitting the fresh hyper-prior alone (lr 5e-3) before training all")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    imgs, names = load_images(args.data)
    print(f"{len(imgs)} training images from {args.data}", flush=True)
    (args.run / "data.json").write_text(json.dumps({"root": str(args.data), "files": names}, indent=0))

    ck = args.run / "last.pt"
    init_model = None
    if args.init_from and not ck.exists() and args.widen_from is None:
        from from_onnx import state_from_onnx

        init_model, _ = state_from_onnx(args.init_from)
        args.N, args.M = init_model.N, init_model.M
    elif ck.exists():
        targs = torch.load(ck, weights_only=False)["args"]
        args.N, args.M = int(targs["N"]), int(targs["M"])
        args.Ns = int(targs.get("Ns", 0))
        # a resumed run keeps saying where it started (export.py records the shipped model it came from)
        if targs.get("init_from") not in (None, "None"):
            args.init_from, args.prior_warmup = targs["init_from"], int(targs["prior_warmup"])
    model = HyperCodec(args.N, args.M, Ns=args.Ns or None)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    rng = np.random.default_rng(args.seed)
    if init_model is not None:
        model.load_state_dict(init_model.state_dict())
        popt = torch.optim.Adam(model.prior.parameters(), lr=5e-3)
        for i in range(args.prior_warmup):
            x = batch(imgs, rng, args.batch, args.size)
            r = torch.from_numpy(rng.integers(0, len(LAMBDAS), args.batch))
            with torch.no_grad():
                z = model.h_a(model.g_a(x) * torch.exp(model.log_gain[r])[:, :, None, None])
            z_lik = model.prior.likelihood(z + torch.empty_like(z).uniform_(-0.5, 0.5))
            zbpp = -torch.log2(z_lik.clamp_min(1e-9)).sum() / (args.batch * args.size**2)
            popt.zero_grad(set_to_none=True)
            zbpp.backward()
            popt.step()
            if (i + 1) % 100 == 0:
                print(f"prior warm-up {i + 1}: z bpp {zbpp.item():.4f}", flush=True)
        print(f"initialised from {args.init_from} (prior fitted for {args.prior_warmup} steps)", flush=True)
    if not ck.exists() and args.widen_from is not None:
        old = torch.load(args.widen_from, weights_only=False)
        gen = torch.Generator().manual_seed(args.seed)
        if old["model"]["g_s.0.weight"].shape[1] != model.Ns:
            model.load_state_dict(widen_synthesis_state(old["model"], model.state_dict(), gen))
            what = f"Ns={model.Ns}"
        else:
            model.load_state_dict(widen_state(old["model"], model.state_dict(), gen))
            what = f"M={args.M}"
        step = int(old["step"])
        if args.init_from:  # names the shipped model the checkpoint is (lineage for export.py)
            args.prior_warmup = 0
        print(f"widened {args.widen_from} (step {step}) to {what}", flush=True)
    if ck.exists():
        state = torch.load(ck, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng = np.random.default_rng([args.seed, step])  # reseed deterministically per resume point
        torch.manual_seed(args.seed + step)
        print(f"resumed at step {step}", flush=True)
    for g in opt.param_groups:
        g["lr"] = args.lr
    lambdas = torch.tensor(LAMBDAS)

    def save():
        tmp = ck.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "args": {k: str(v) for k, v in vars(args).items()}}, tmp)
        os.replace(tmp, ck)

    t0 = time.time()
    last_ck = t0
    acc = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "ssim2": 0.0, "n": 0}
    model.train()
    decayed = False
    while step < args.max_steps and time.time() - t0 < args.minutes * 60:
        if not decayed and time.time() - t0 > args.decay_at * args.minutes * 60:
            for g in opt.param_groups:
                g["lr"] = args.lr / 4
            decayed = True
            print(f"step {step}: learning rate -> {args.lr / 4:g}", flush=True)
        x = batch(imgs, rng, args.batch, args.size)
        r = torch.from_numpy(rng.integers(0, len(LAMBDAS), args.batch))
        x_hat, y_lik, z_lik = model(x, r)
        npx = x.shape[2] * x.shape[3]
        ybits = -torch.log2(y_lik.clamp_min(1e-9))
        zbits = -torch.log2(z_lik.clamp_min(1e-9)).sum((1, 2, 3))
        bits = ybits.sum((1, 2, 3)) + zbits
        bpp = bits / npx
        k0 = args.new_channels_from
        if k0 and step < args.new_rate_ramp_until:
            w = 0.05 + 0.95 * min(1.0, max(0.0, (step - args.new_rate_until)
                                           / max(1, args.new_rate_ramp_until - args.new_rate_until)))
            bits_w = ybits[:, :k0].sum((1, 2, 3)) + w * ybits[:, k0:].sum((1, 2, 3)) + zbits
        else:
            bits_w = bits
        mse = ((x_hat - x) ** 2).mean((1, 2, 3))
        dist = 255.0**2 * mse
        if args.ssim2_weight:
            e = ssim2_torch.weighted(x, x_hat.clamp(0, 1))
            dist = dist + args.ssim2_weight * e
            acc["ssim2"] += ssim2_torch.from_weighted(e.detach()).mean().item()
        loss = (lambdas[r] * dist + bits_w / npx).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc["loss"] += loss.item()
        acc["bpp"] += bpp.mean().item()
        acc["psnr"] += (-10 * torch.log10(mse.clamp_min(1e-10))).mean().item()
        acc["n"] += 1
        if step % 100 == 0:
            n = acc["n"]
            el = time.time() - t0
            print(f"step {step} loss {acc['loss']/n:.4f} bpp {acc['bpp']/n:.3f} psnr {acc['psnr']/n:.2f} "
                  f"ssim2 {acc['ssim2']/n:.2f} ({el/60:.1f} min)", flush=True)
            acc = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "ssim2": 0.0, "n": 0}
        if time.time() - last_ck > args.ckpt_minutes * 60:
            save()
            last_ck = time.time()
    save()
    print(f"done at step {step}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
