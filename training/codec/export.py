"""Export a trained checkpoint to the four ONNX models shipped in precodec/models.

    /work/venv/bin/python training/codec/export.py --ckpt training/runs/codec/last.pt

writes ``precodec/models/<model>-{analysis,synthesis,hyper-analysis,hyper-synthesis}.onnx``
and one manifest ``.json`` beside each (``--model``, default the newest name,
``learned-hp48-v4``).  A model name, once shipped, is never re-exported with
other weights: new weights get a new name and a new id in the frozen table
``precodec.learned.container.MODEL_IDS``, so old streams keep decoding.

* analysis / synthesis / hyper-analysis: float32 graphs of the trained
  transforms (pixel values after decoding may differ in the last bits between
  machines; that never changes how the bitstream is parsed).
* hyper-synthesis: a **fixed-point** graph.  Weights and biases are integers
  (per-output-channel power-of-two scale), activations are re-quantised to
  integers ``floor(x * 2^-k + 0.5)`` clipped to [0, 4095] after every layer.
  Every accumulator is an integer whose magnitude is bounded (at export) below
  2^23, so float32 evaluation is *exact* whatever the summation order, SIMD
  width or FMA use of the machine.  The graph outputs integer-valued tensors:
  the means in units of 1/256 and the scale-table position in units of 1/256;
  the runtime rounds them (``rint``, which also absorbs any error below 0.5)
  and takes ``(pos + 128) >> 8`` as the scale index.
* the codec's constants (gain vectors, scale table, the integer frequency
  tables of the hyper-latent and of every scale, fixed-point parameters) are
  stored as JSON in the hyper-synthesis model's ONNX metadata ("precodec.codec"),
  so they are pinned by that file's SHA-256.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import LAMBDAS, SCALE_LEVELS, SCALE_MAX, SCALE_MIN, Analysis, HyperAnalysis, HyperCodec, Synthesis  # noqa: E402
from train import DEFAULT_DATA, load_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "precodec" / "models"
DEFAULT_MODEL = "learned-hp48-v4"  # default --model
AMAX = 4095  # hidden activations of the fixed-point hyper-synthesis: integers in [0, AMAX]
ACC_LIMIT = 2**23  # bound on every accumulator magnitude (exact in float32 below 2^24)
OUT_FRAC = 8  # outputs in units of 2^-8
ZMAX = 128  # hyper-latent symbols are clamped to [-ZMAX, ZMAX] (default of --zmax; v1-v3 were exported with 40)
FREQ_BITS = 16


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_float(module, inp_name, out_name, channels, path: Path, opset=17):
    module.eval()
    x = torch.rand(1, channels, 64, 64) if channels == 3 else torch.randn(1, channels, 8, 8)
    torch.onnx.export(
        module, (x,), str(path), input_names=[inp_name], output_names=[out_name], opset_version=opset,
        dynamic_axes={inp_name: {2: "h", 3: "w"}, out_name: {2: "h", 3: "w"}}, dynamo=False,
        do_constant_folding=True,
    )
    m = onnx.load(str(path))
    onnx.save(m, str(path), save_as_external_data=False)  # weights embedded, no side file


def gaussian_tables(scales):
    """Integer frequency tables (sum 2^16, every symbol >= 1) for each scale; half-widths."""
    from math import erfc, sqrt

    tables, half = [], []
    for s in scales:
        a = int(max(4, math.ceil(10 * s)))
        k = np.arange(-a, a + 1, dtype=np.float64)
        cdf = lambda v: 0.5 * np.array([erfc(-t / (s * sqrt(2))) for t in v])  # noqa: E731
        p = cdf(k + 0.5) - cdf(k - 0.5)
        p[0] += cdf(np.array([-a - 0.5]))[0]
        p[-1] += 1 - cdf(np.array([a + 0.5]))[0]
        tables.append(quantise_pmf(p))
        half.append(a)
    return tables, half


def quantise_pmf(p: np.ndarray) -> list[int]:
    total = 1 << FREQ_BITS
    p = np.maximum(p, 0) / p.sum()
    f = np.maximum(1, np.floor(p * (total - len(p)))).astype(np.int64)
    f[np.argmax(f)] += total - f.sum()
    assert f.min() >= 1 and f.sum() == total
    return f.tolist()


def fixed_point_hs(model: HyperCodec, calib_z: list[torch.Tensor], headroom: float = 0.0):
    """Quantise h_s to integer weights and build its ONNX graph."""
    hs = model.h_s
    layers = [hs[0], hs[2], hs[4]]
    # fold the scale-table mapping into the last layer: position = (log_scale - ln smin) / step
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
    M = model.M
    w3 = layers[2].weight.detach().double().clone()
    b3 = layers[2].bias.detach().double().clone()
    w3[M:] /= step
    b3[M:] = (b3[M:] - math.log(SCALE_MIN)) / step
    weights = [layers[0].weight.detach().double(), layers[1].weight.detach().double(), w3]
    biases = [layers[0].bias.detach().double(), layers[1].bias.detach().double(), b3]
    transposed = [True, True, False]

    # calibrate activation ranges on real hyper-latents
    acts = [[], []]
    with torch.no_grad():
        for z in calib_z:
            a = torch.relu(hs[0](z))
            acts[0].append(a.flatten())
            a = torch.relu(hs[2](a))
            acts[1].append(a.flatten())
    if headroom > 0:  # range = headroom x the largest calibration activation (v4 on: no clipping seen on photos)
        amax_float = [headroom * float(torch.cat(a).max()) for a in acts]
    else:  # v1-v3: the 99.999% quantile
        amax_float = [float(torch.quantile(torch.cat(a)[:2_000_000], 0.99999)) for a in acts]
    act_frac = [0] + [int(math.floor(math.log2(AMAX / max(m, 1e-6)))) for m in amax_float]  # input scale of layer i
    in_bound = [ZMAX, AMAX, AMAX]
    nodes, inits = [], []
    x = "z"
    info = {"act_frac": act_frac, "w_frac": []}
    for i in range(3):
        w, b = weights[i], biases[i]
        # per-output-channel L1 (ConvTranspose weight: (Cin, Cout, k, k); Conv: (Cout, Cin, k, k))
        wc = w.transpose(0, 1) if transposed[i] else w
        l1 = wc.abs().flatten(1).sum(1)
        out_frac = act_frac[i + 1] if i < 2 else OUT_FRAC
        fr = []
        for c in range(wc.shape[0]):
            f = 30
            while True:
                wi = torch.round(wc[c] * 2.0**f)
                bi = torch.round(b[c] * 2.0 ** (f + act_frac[i]))
                bound = in_bound[i] * wi.abs().sum() + bi.abs()
                if bound < ACC_LIMIT and f + act_frac[i] >= out_frac:
                    break
                f -= 1
                if f < -20:
                    raise RuntimeError("cannot fit layer in fixed point")
            fr.append(f)
        fr_t = torch.tensor(fr, dtype=torch.float64)
        # re-quantisation must shift right (k >= 1) so that x * 2^-k + 0.5 stays exact in float32
        assert min(fr) + act_frac[i] - out_frac >= 1, (i, fr, act_frac, out_frac)
        wi = torch.round(wc * (2.0 ** fr_t)[:, None, None, None])
        bi = torch.round(b * 2.0 ** (fr_t + act_frac[i]))
        if transposed[i]:
            wi = wi.transpose(0, 1)
        info["w_frac"].append(fr)
        wn, bn, sn = f"W{i}", f"B{i}", f"S{i}"
        inits += [
            numpy_helper.from_array(wi.float().numpy(), wn),
            numpy_helper.from_array(bi.float().numpy(), bn),
            numpy_helper.from_array((2.0 ** (out_frac - act_frac[i] - fr_t)).float().numpy().reshape(1, -1, 1, 1), sn),
        ]
        conv_node = (
            helper.make_node("ConvTranspose", [x, wn, bn], [f"acc{i}"], strides=[2, 2], pads=[1, 1, 1, 1],
                             output_padding=[1, 1], kernel_shape=[3, 3])
            if transposed[i]
            else helper.make_node("Conv", [x, wn, bn], [f"acc{i}"], kernel_shape=[1, 1])
        )
        nodes += [
            conv_node,
            helper.make_node("Mul", [f"acc{i}", sn], [f"sc{i}"]),
            helper.make_node("Add", [f"sc{i}", "half"], [f"ad{i}"]),
            helper.make_node("Floor", [f"ad{i}"], [f"fl{i}" if i < 2 else "out"]),
        ]
        if i < 2:
            nodes.append(helper.make_node("Clip", [f"fl{i}", "zero", "amax"], [f"a{i}"]))
            x = f"a{i}"
    inits += [
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(float(AMAX), np.float32), "amax"),
    ]
    graph = helper.make_graph(
        nodes, "hyper_synthesis_fixed_point",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, model.N, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2 * M, "H", "W"])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m)
    info["calib_act_max"] = amax_float
    return m, info


def main(argv=None) -> int:
    global ZMAX
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=ROOT / "training" / "runs" / "codec" / "last.pt")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="model name (new weights need a new name)")
    ap.add_argument("--schedule", default="", help="how the checkpoint was trained (resumed runs, learning rates)")
    ap.add_argument("--zmax", type=int, default=ZMAX,
                    help="hyper-latent symbols are clamped to [-zmax, zmax] (v1-v3: 40; v4's rate point 5 reaches "
                         "|z| = 43 on training images and 65 on a photo, so v4 and v5 use 128; a clamped z gives "
                         "wrong means and scales)")
    ap.add_argument("--act-headroom", type=float, default=2.0,
                    help="fixed-point hyper-synthesis activation range = this x the largest calibration "
                         "activation (0: the 99.999%% quantile, as v1-v3; v4 and v5 use 2: v4's rate point 5 "
                         "reached 3x the quantile on a photo and the clipped scales cost up to 40 SSIMULACRA2 points)")
    args = ap.parse_args(argv)
    ZMAX = args.zmax
    MODEL = args.model
    version = MODEL.rsplit("-v", 1)[-1]
    state = torch.load(args.ckpt, weights_only=False, map_location="cpu")
    targs = state.get("args", {})
    N, M, Ns = int(targs.get("N", 48)), int(targs.get("M", 64)), int(targs.get("Ns", 0)) or None
    model = HyperCodec(N, M, Ns=Ns)
    model.load_state_dict(state["model"])
    model.eval()
    step = int(state["step"])
    args.out.mkdir(parents=True, exist_ok=True)
    files = {}
    for part, mod, inp, out, ch in (
        ("analysis", Analysis(model), "x", "y", 3),
        ("synthesis", Synthesis(model), "y", "x", M),
        ("hyper-analysis", HyperAnalysis(model), "y", "z", M),
    ):
        p = args.out / f"{MODEL}-{part}.onnx"
        export_float(mod, inp, out, ch, p)
        files[part] = p

    # calibration hyper-latents from training images (never Kodak), every rate point
    imgs, _ = load_images(args.data)
    rng = np.random.default_rng(0)
    calib = []
    with torch.no_grad():
        for j in rng.choice(len(imgs), 24, replace=False):
            im = imgs[j]
            h, w = (im.shape[0] // 64) * 64, (im.shape[1] // 64) * 64
            x = torch.from_numpy(np.ascontiguousarray(im[:h, :w])).permute(2, 0, 1)[None].float() / 255
            y = model.g_a(x)
            for r in range(len(LAMBDAS)):
                z = torch.round(model.h_a(y * torch.exp(model.log_gain[r])[None, :, None, None]))
                calib.append(z.clamp(-ZMAX, ZMAX))
    hs_model, fp_info = fixed_point_hs(model, calib, args.act_headroom)

    # hyper-latent tables from the factorized prior
    with torch.no_grad():
        k = torch.arange(-ZMAX, ZMAX + 1, dtype=torch.float32)
        lik = model.prior.likelihood(k.view(1, 1, 1, -1).repeat(1, N, 1, 1))[0, :, 0, :].double().numpy()
    z_tables = [quantise_pmf(lik[c] / lik[c].sum()) for c in range(N)]
    scales = np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))
    y_tables, y_half = gaussian_tables(scales)
    codec = {
        "model": MODEL,
        "N": N,
        "M": M,
        "Ns": model.Ns,
        "down": 64,
        "lambdas": list(LAMBDAS),
        "gain": torch.exp(model.log_gain).detach().double().numpy().tolist(),
        "igain": torch.exp(model.log_igain).detach().double().numpy().tolist(),
        "zmax": ZMAX,
        "z_tables": z_tables,
        "scales": scales.tolist(),
        "y_half": y_half,
        "y_tables": y_tables,
        "out_frac": OUT_FRAC,
        "fixed_point": fp_info,
    }
    helper.set_model_props(hs_model, {"precodec.codec": json.dumps(codec, separators=(",", ":"))})
    p = args.out / f"{MODEL}-hyper-synthesis.onnx"
    onnx.save(hs_model, str(p))
    files["hyper-synthesis"] = p

    n_params = sum(p.numel() for p in model.parameters())
    tuned_for = "ssimulacra2" if float(targs.get("ssim2_weight", 0) or 0) > 0 else "psnr"
    base = None
    if targs.get("init_from") not in (None, "None"):
        # the shipped model this run started from: its own manifest (with its sha256) is the chain's first link
        base_name = targs["init_from"]
        base = {"model": base_name, "synthesis_sha256": json.loads(
            (args.out / f"{base_name}-synthesis.json").read_text())["sha256"],
            "training": json.loads((args.out / f"{base_name}-synthesis.json").read_text())["training"]}
    data_list = "../shared/datasets/train (bsds432 + wikipedia, 477 images; see training/runs/codec/data.json)"
    for part, p in files.items():
        man = {
            "name": f"{MODEL}-{part}",
            "version": version,
            "file": p.name,
            "sha256": sha256(p),
            "bytes": p.stat().st_size,
            "codec": MODEL,
            "part": part,
            "architecture": f"mean-scale hyperprior, N={N} M={M}"
                            + (f" Ns={model.Ns} (synthesis)" if model.Ns != N else "") + f", GDN, 6 rate points (gain vectors); {n_params} parameters",
            "tuned_for": tuned_for,
            "training": {
                "script": "training/codec/train.py",
                "data": data_list,
                "steps": step,
                "args": targs,
                "schedule": args.schedule or "one run of training/codec/train.py with the args above",
                "exported": datetime.date.today().isoformat(),
                **({"init_from": base} if base else {}),
            },
            "results": "see benchmarks/results/learned.md",
        }
        (args.out / f"{MODEL}-{part}.json").write_text(json.dumps(man, indent=2) + "\n")
        print(part, p.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
