"""Export the trained denoiser to ONNX (fp32 + static int8) with manifests.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 /work/venv/bin/python training/denoiser/export.py [--ckpt training/runs/denoiser/last.pt]

Writes ``precodec/models/denoiser.onnx`` and ``denoiser_int8.onnx`` (weights
embedded, opset 17, dynamic height/width) and their ``.json`` manifests with the
SHA-256, the training data and steps, and the held-out results measured here
with onnxruntime on the ``val`` images of ``data.txt`` (never Kodak).
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
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import CORE_CHANNELS, Denoiser, PhaseCore, macs_per_pixel, n_params, phase_input  # noqa: E402
from train import RUN_DIR, load_images, make_val, read_list  # noqa: E402

REPO = HERE.parent.parent
MODEL_DIR = REPO / "precodec" / "models"
VERSION = "2.5.0"


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def ort_eval(path: Path, val) -> dict:
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])
    res = {}
    for s, (x, y, sg) in val.items():
        xs, ys, ss = x.numpy(), y.numpy(), sg.numpy()
        mse_n, mse_d = [], []
        for i in range(xs.shape[0]):
            z = phase_input(x[i:i + 1], sg[i:i + 1]).numpy()
            noise = torch.from_numpy(sess.run(None, {"z": z})[0][:, :12])
            out = xs[i:i + 1] - torch.nn.functional.pixel_shuffle(noise, 2).numpy()
            out = np.round(np.clip(out, 0, 1) * 255) / 255
            mse_d.append(np.mean((out - ys[i:i + 1]) ** 2))
            mse_n.append(np.mean((xs[i:i + 1] - ys[i:i + 1]) ** 2))
        p = lambda m: round(10 * math.log10(1 / float(np.mean(m))), 3)  # noqa: E731
        res[f"sigma{s}"] = {"psnr_noisy": p(mse_n), "psnr_denoised": p(mse_d)}
    return res


class _Reader:
    def __init__(self, val):
        self.items = []
        for s, (x, _y, sg) in val.items():
            for i in range(0, x.shape[0], 3):
                self.items.append({"z": phase_input(x[i:i + 1], sg[i:i + 1]).numpy()})
        self.it = iter(self.items)

    def get_next(self):
        return next(self.it, None)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(RUN_DIR / "last.pt"))
    ap.add_argument("--out", default=str(MODEL_DIR))
    ap.add_argument("--note", default="", help="free text stored as training.note in the manifests")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    state = torch.load(args.ckpt, weights_only=False)
    targs = state["args"]
    model = Denoiser(targs["c1"], targs["c2"], targs["n"], targs["nh"]).eval()
    model.load_state_dict(state["model"])
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "denoiser.onnx"
    # the exported graph is the network without its pixel shuffles (model.PhaseCore): the runtime does them
    # in numpy (preproc/denoise.py); the int8 graph alone went from 151-158 to 82-92 ms/MP on one thread
    core = PhaseCore(model).eval()
    z = phase_input(torch.rand(1, 3, 64, 64), torch.full((1, 3), 10.0))
    torch.onnx.export(
        core, (z,), str(fp32), dynamo=False, opset_version=17, input_names=["z"],
        output_names=["noise"], dynamic_axes={"z": {2: "h", 3: "w"}, "noise": {2: "h", 3: "w"}},
        export_params=True, do_constant_folding=True,
    )
    import onnx

    m = onnx.load(str(fp32))
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in m.graph.initializer), "weights not embedded"
    val = make_val(load_images(read_list("val")))
    held_fp32 = ort_eval(fp32, val)

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out_dir / "_pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    int8 = out_dir / "denoiser_int8.onnx"
    quantize_static(str(pre), str(int8), _Reader(val), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.Percentile,
                    extra_options={"CalibPercentile": 99.99})
    pre.unlink()
    held_int8 = ort_eval(int8, val)

    hist = state.get("history", [])
    # a run started with --init-from continues another run's weights (fresh optimizer and schedule)
    # (followed back through every run's own --init-from, oldest first)
    stages = [{"run": Path(args.ckpt).parent.name, "steps": state["step"], "lr": targs["lr"],
               "seed": targs["seed"], "batch": targs["batch"], "body_layers": targs["n"],
               "ssim2_weight": targs.get("ssim2_weight", 0.0), "init_from": targs.get("init_from")}]
    src = targs.get("init_from")
    while src:
        if src.endswith(".onnx"):
            # started from an exported model: its manifest (read before this export rewrites it) lists its stages
            prev_man = json.loads(Path(src).with_suffix(".json").read_text())
            prev_stages = prev_man["training"]["stages"]
            prev_stages[-1] = {**prev_stages[-1], "exported_as": {"version": prev_man["version"],
                                                                   "sha256": prev_man["sha256"]}}
            stages[:0] = prev_stages
            break
        prev = torch.load(src, weights_only=False)
        pa = prev["args"]
        stages.insert(0, {"run": Path(src).parent.name, "steps": prev["step"], "lr": pa["lr"], "seed": pa["seed"],
                          "batch": pa["batch"], "body_layers": pa.get("n", 4),
                          "ssim2_weight": pa.get("ssim2_weight", 0.0), "init_from": pa.get("init_from")})
        src = pa.get("init_from")
    total_steps = sum(st["steps"] for st in stages)
    train_cmd = ("OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE nice -n 10 /work/venv/bin/python "
                 f"training/denoiser/train.py --run training/runs/{stages[-1]['run']} --steps {targs['steps']} "
                 f"--lr {targs['lr']} --warmup {targs['warmup']} --seed {targs['seed']}"
                 + "".join(f" --{k} {targs[k]}" for k, d in (("c1", 24), ("c2", 48), ("n", 4), ("nh", 1))
                           if targs[k] != d)
                 + (f" --ssim2-weight {targs['ssim2_weight']}" if targs.get("ssim2_weight") else "")
                 + (f" --init-from {targs['init_from']}" if targs.get("init_from") else ""))
    common = {
        "version": VERSION,
        "architecture": (f"FFDNet-style residual U-Net: PixelUnshuffle(2) RGB (12 ch) + 3-channel noise map "
                         f"(sigma/25) -> {1 + targs['nh']} conv3x3 x {targs['c1']} ch at 1/2 res -> 2x2 stride-2 conv "
                         f"to {targs['c2']} ch -> {targs['n']} conv3x3 at 1/4 res (+skip) -> 1x1 conv + "
                         f"PixelShuffle(2), added to the 1/2-res features -> conv3x3 x {targs['c1']} -> 12-ch "
                         f"noise; output = input - PixelShuffle(noise); ReLU. The graph is the network between the two pixel "
                         f"shuffles (see layout, inputs, outputs); the runtime does the shuffles"),
        "parameters": n_params(model),
        "macs_per_pixel": round(macs_per_pixel(model)),
        "layout": "phases-16",
        "inputs": {"z": f"float32 (1, {CORE_CHANNELS}, H/2, W/2): channels 0-11 the RGB input in [0, 1] "
                        "pixel-unshuffled by 2 (channel 4c + 2i + j: colour c, row phase i, column phase j), "
                        "12-14 the noise std of R, G, B in 8-bit units / 25 (constant maps), 15 zero; "
                        "H and W multiples of 4"},
        "outputs": {"noise": f"float32 (1, {CORE_CHANNELS}, H/2, W/2): channels 0-11 the noise of the phases "
                             "(same order); denoised = input - PixelShuffle(noise[:12], 2); 12-15 zero"},
        "training": {
            "data": "../shared/datasets/train (bsds432 + wikipedia) as listed in training/denoiser/data.txt; "
                    "'val' lines held out; never Kodak",
            "degradations": "Poisson-Gaussian noise sigma 1-25 at mid-grey (random Poisson share, channel gains "
                            "0.8-1.25), correlated chroma noise (20%), 8-bit rounding, JPEG q75-95 of the noisy "
                            "input (10%), 5% clean samples; noise-map input = the true per-channel noise std "
                            "x U(0.9, 1.1)",
            "patches": f"{targs['patch']}x{targs['patch']}, flips/rotations; {targs['p_small']:.0%} cut from the "
                       "images 2x area-downscaled (cleaner targets)",
            "loss": "L1 + 0.5 * L1 of horizontal/vertical gradients"
                    + ("; the stages with an ssim2_weight also add that times the differentiable SSIMULACRA2 "
                       "error (training/denoiser/ssim2_torch.py) of the output against the clean patch"
                       if any(st.get("ssim2_weight") for st in stages) else ""),
            "steps": total_steps, "stages": stages, "batch": targs["batch"], "patch": targs["patch"],
            "seed": targs["seed"],
            "optimizer": f"Adam lr {targs['lr']} ({targs['warmup']}-step warm-up) cosine to 1e-5 over "
                         f"{targs['steps']} steps, gradient norm clipped at 1",
            "command": (train_cmd + " && OMP_NUM_THREADS=1 /work/venv/bin/python training/denoiser/export.py"
                        f" --ckpt training/runs/{stages[-1]['run']}/last.pt"),
            "history": hist[-3:],
            **({"note": args.note} if args.note else {}),
        },
        "exported": datetime.date.today().isoformat(),
    }
    held_note = ("held-out: 30 'val' images of data.txt, 192x192 centre crops, Poisson-Gaussian noise "
                 "(Poisson share 0.5) at sigma 5/10/15 at mid-grey, PSNR in dB (onnxruntime, 8-bit output)")
    drop = {k: round(held_fp32[k]["psnr_denoised"] - held_int8[k]["psnr_denoised"], 3) for k in held_int8}
    for name, path, held, extra in (
        ("denoiser", fp32, held_fp32, {}),
        ("denoiser_int8", int8, held_int8,
         {"quantization": "onnxruntime static QDQ, per-channel int8 weights, uint8 activations, "
                          "calibrated (99.99th percentile) on the held-out crops",
          "fp32_minus_int8_psnr": drop}),
    ):
        man = {"name": name, "file": path.name, "sha256": sha256(path), **common,
               "held_out": {"note": held_note, **held}, **extra}
        (out_dir / f"{name}.json").write_text(json.dumps(man, indent=2) + "\n")
        print(name, path.stat().st_size, "bytes", json.dumps(held))


if __name__ == "__main__":
    main()
