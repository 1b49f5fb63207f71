"""Rebuild a trainable :class:`model.HyperCodec` state from a shipped codec's four ONNX files.

Fine-tuning a shipped model needs its weights, and checkpoints are not committed (only the ONNX files
and their manifests are).  This inverts ``export.py``:

* analysis, synthesis, hyper-analysis: the float graphs keep every parameter under its torch name
  (the GDN layers' raw ``beta``/``gamma`` included), so they are copied as they are;
* hyper-synthesis: the fixed-point graph's integer weights are divided back by their per-channel
  power-of-two scales (``fixed_point.w_frac``/``act_frac`` in the codec metadata) and the folded
  scale-table mapping of the last layer is undone; what is lost is below the export's rounding
  (weights kept to 2^-f with f chosen as large as the accumulator bound allows);
* gains: ``log`` of the metadata's ``gain``/``igain`` vectors;
* the hyper-latent's factorized prior is **not** recoverable (only its quantised tables ship): it is
  returned freshly initialised, and ``train.py --init-from`` fits it first with everything else frozen.

    python training/codec/from_onnx.py learned-hp48-v3   # self-check: rebuilt torch model vs the ONNX files
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import SCALE_LEVELS, SCALE_MAX, SCALE_MIN, HyperCodec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "precodec" / "models"


def _inits(path: Path) -> dict[str, np.ndarray]:
    m = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def codec_meta(name: str, models: Path = MODELS) -> dict:
    m = onnx.load(str(models / f"{name}-hyper-synthesis.onnx"))
    return json.loads({p.key: p.value for p in m.metadata_props}["precodec.codec"])


def state_from_onnx(name: str, models: Path = MODELS) -> tuple[HyperCodec, list[str]]:
    """Return ``(model, restored)``: a HyperCodec carrying the shipped weights, and the names restored."""
    meta = codec_meta(name, models)
    N, M = int(meta["N"]), int(meta["M"])
    model = HyperCodec(N, M, n_rates=len(meta["gain"]), Ns=int(meta.get("Ns", N)))
    sd = model.state_dict()
    restored = []
    for part in ("analysis", "synthesis", "hyper-analysis"):
        for k, v in _inits(models / f"{name}-{part}.onnx").items():
            if k in sd:
                assert sd[k].shape == v.shape, (k, sd[k].shape, v.shape)
                sd[k] = torch.from_numpy(v.copy())
                restored.append(k)
    fp = meta["fixed_point"]
    hs = _inits(models / f"{name}-hyper-synthesis.onnx")
    step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
    for i, (tk, transposed) in enumerate((("h_s.0", True), ("h_s.2", True), ("h_s.4", False))):
        wi = torch.from_numpy(hs[f"W{i}"].astype(np.float64))
        bi = torch.from_numpy(hs[f"B{i}"].astype(np.float64))
        fr = torch.tensor(fp["w_frac"][i], dtype=torch.float64)
        af = fp["act_frac"][i]
        wc = wi.transpose(0, 1) if transposed else wi  # per output channel first
        w = wc / (2.0 ** fr)[:, None, None, None]
        b = bi / 2.0 ** (fr + af)
        if transposed:
            w = w.transpose(0, 1)
        if i == 2:  # undo the folded scale-table mapping of the log-scale half
            w[M:] *= step
            b[M:] = b[M:] * step + math.log(SCALE_MIN)
        sd[f"{tk}.weight"] = w.float().contiguous()
        sd[f"{tk}.bias"] = b.float()
        restored += [f"{tk}.weight", f"{tk}.bias"]
    sd["log_gain"] = torch.log(torch.tensor(meta["gain"], dtype=torch.float64)).float()
    sd["log_igain"] = torch.log(torch.tensor(meta["igain"], dtype=torch.float64)).float()
    restored += ["log_gain", "log_igain"]
    model.load_state_dict(sd)
    return model, restored


def _selfcheck(name: str) -> None:
    import onnxruntime as ort

    model, restored = state_from_onnx(name)
    missing = [k for k in model.state_dict() if k not in restored]
    print(f"restored {len(restored)} tensors; fresh (not in the ONNX files): {missing}")
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 128, 192), dtype=np.float32)
    sess = {p: ort.InferenceSession(str(MODELS / f"{name}-{p}.onnx")) for p in
            ("analysis", "synthesis", "hyper-analysis", "hyper-synthesis")}
    with torch.no_grad():
        y_t = model.g_a(torch.from_numpy(x)).numpy()
        y_o = sess["analysis"].run(None, {"x": x})[0]
        print("analysis max |diff|", float(np.abs(y_t - y_o).max()), "of", float(np.abs(y_o).max()))
        z = np.round(sess["hyper-analysis"].run(None, {"y": y_o * 2.0})[0]).clip(-40, 40).astype(np.float32)
        mean_t, ls_t = model.hyper_out(torch.from_numpy(z))
        out = sess["hyper-synthesis"].run(None, {"z": z})[0]
        M = model.M
        mean_o = out[:, :M] / 256.0
        stepv = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (SCALE_LEVELS - 1)
        ls_o = out[:, M:] / 256.0 * stepv + math.log(SCALE_MIN)
        print("hyper-synthesis mean max |diff|", float(np.abs(mean_t.numpy() - mean_o).max()),
              "log-scale max |diff|", float(np.abs(ls_t.numpy() - ls_o).max()))
        xs_t = model.g_s(torch.from_numpy(y_o)).numpy()
        xs_o = sess["synthesis"].run(None, {"y": y_o})[0]
        print("synthesis max |diff|", float(np.abs(xs_t - xs_o).max()))


if __name__ == "__main__":
    _selfcheck(sys.argv[1] if len(sys.argv) > 1 else "learned-hp48-v3")
