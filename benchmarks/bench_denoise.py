"""Benchmark: the learned denoiser against plain JPEG and OpenCV non-local means.

Measures, in one process, side by side:

1. Kodak + synthetic sensor noise (Poisson-Gaussian, Poisson share 0.5, std
   ``sigma`` at mid-grey, per channel, 8-bit) at sigma 5, 10, 15: rate-quality
   curves (libjpeg via Pillow, 4:2:0, qualities ``QUALITIES``) with SSIMULACRA2
   against the **clean** original for

   - ``plain``: the noisy image encoded as is;
   - ``nlm``: OpenCV ``fastNlMeansDenoisingColored`` (7/21 windows), the strength
     ``h = hColor`` picked per level from ``NLM_FACTORS * sigma`` by the best mean
     SSIMULACRA2 of the unencoded result (the oracle choice: it uses the clean
     image, which precodec never sees);
   - ``precodec``: ``precodec.preproc.preprocess(denoise="clean")``, the real path
     (noise estimate, content guard, model, fidelity guard), with the default model
     build (int8); ``precodec_alt``: the same with the other build (fp32).  The goals
     are judged on the default build.

   BD-rate (piecewise-linear log-rate over the common SSIMULACRA2 range of the
   mean curves), highest mean quality, and the bytes to reach targets 70 and 80.
2. Clean Kodak (all 24) with ``denoise="auto"``: triggers, and whether the JPEG
   bytes from :func:`precodec.optimize` equal those of ``denoise="off"``.
3. ``ood-dev``: content class per image and whether ``auto`` / ``clean`` ran.
4. Speed (ms per megapixel, and as a ratio to one JPEG encode of the same image
   in the same run; medians of 7 interleaved rounds, each timing the JPEG encode and
   every configuration back to back) at 1 and 2 threads, fp32 and int8; peak memory of
   ``preprocess(denoise="clean")`` on a 24-megapixel image (subprocess, peak RSS
   from ``/proc/self/status`` VmHWM).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/bench_denoise.py [--images 8]

(``--render-only`` rebuilds the Markdown and the plot from the JSON.)  Writes ``benchmarks/results/denoise.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "datasets"
OUT = REPO / "benchmarks" / "results"
QUALITIES = (20, 35, 50, 65, 75, 85, 92, 97)
SIGMAS = (5, 10, 15)
NLM_FACTORS = (0.2, 0.35, 0.5, 0.7)
TARGETS = (70, 80)
#: the issue's goals outside the curves: ood-dev categories that must never be denoised, and the speed bound
GUARDED_OOD = ("medical", "schematic", "screenshot")
SPEED_GOAL_MS_PER_MP = 80


def _precisions() -> tuple[str, str]:
    """(default, other) model build of ``preprocess``: both get a curve, the default is judged."""
    import inspect

    from precodec.preproc import preprocess

    d = inspect.signature(preprocess).parameters["precision"].default
    return d, ("int8" if d == "fp32" else "fp32")


def sensor_noise(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = clean.astype(np.float32) / 255
    s = sigma / 255
    var = s * s * (0.5 + 0.5 * x / 0.5)
    y = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(var)
    return np.clip(np.round(y * 255), 0, 255).astype(np.uint8)


def jpeg(a: np.ndarray, q: int) -> tuple[int, np.ndarray]:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    n = buf.tell()
    buf.seek(0)
    return n, np.asarray(Image.open(buf).convert("RGB"))


def curve(ref, a: np.ndarray) -> list[tuple[int, float]]:
    out = []
    for q in QUALITIES:
        n, dec = jpeg(a, q)
        out.append((n, float(ref.score(dec))))
    return out


def _mono(bytes_: np.ndarray, qual: np.ndarray):
    """Points sorted by bytes, keeping only those that raise the quality (the hull used for BD)."""
    o = np.argsort(bytes_)
    b, q = bytes_[o], qual[o]
    keep_b, keep_q = [b[0]], [q[0]]
    for bb, qq in zip(b[1:], q[1:]):
        if qq > keep_q[-1] + 1e-6:
            keep_b.append(bb)
            keep_q.append(qq)
    return np.array(keep_b), np.array(keep_q)


def _log_gap(base: list[tuple[float, float]], test: list[tuple[float, float]]) -> np.ndarray | None:
    """log(bytes of ``test``) - log(bytes of ``base``) at equal quality on a grid over the common range
    (None when the ranges overlap by less than half a point)."""
    b1, q1 = _mono(np.array([p[0] for p in base]), np.array([p[1] for p in base]))
    b2, q2 = _mono(np.array([p[0] for p in test]), np.array([p[1] for p in test]))
    lo, hi = max(q1.min(), q2.min()), min(q1.max(), q2.max())
    if hi - lo < 0.5:
        return None
    grid = np.linspace(lo, hi, 200)
    return np.interp(grid, q2, np.log(b2)) - np.interp(grid, q1, np.log(b1))


def bd_rate(base: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Mean bytes difference (%) of ``test`` vs ``base`` at equal quality over the common range."""
    gap = _log_gap(base, test)
    return None if gap is None else float((np.exp(np.mean(gap)) - 1) * 100)


def worst_rate(base: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Largest bytes difference (%) of ``test`` vs ``base`` at equal quality over the common range
    (<= 0: ``test`` never needs more bytes than ``base`` there)."""
    gap = _log_gap(base, test)
    return None if gap is None else float((np.exp(np.max(gap)) - 1) * 100)


def bytes_at(c: list[tuple[int, float]], target: float) -> float | None:
    b, q = _mono(np.array([p[0] for p in c], float), np.array([p[1] for p in c]))
    if q.max() < target:
        return None
    if q.min() >= target:
        return float(b[0])
    return float(np.exp(np.interp(target, q, np.log(b))))


def kodak_files(n: int) -> list[Path]:
    files = sorted((SHARED / "kodak").glob("kodim*.png"))
    if n >= len(files):
        return files
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def load_rgb(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB"))


def bench_curves(files: list[Path], log) -> dict:
    import cv2

    from precodec.metrics.ssimulacra2 import Ssimulacra2Reference
    from precodec.preproc import preprocess
    from precodec.record import DecisionRecord

    res: dict = {}
    for sigma in SIGMAS:
        per: dict = {"plain": [], "nlm": [], "precodec": [], "precodec_alt": []}
        nlm_pick: dict = {}
        guard: list = []
        t_nlm = t_pre = 0.0
        data = []
        for i, f in enumerate(files):
            clean = load_rgb(f)
            noisy = sensor_noise(clean, sigma, seed=1000 * sigma + i)
            ref = Ssimulacra2Reference(clean)
            cands = {}
            for k in NLM_FACTORS:
                h = float(k * sigma)
                t = time.perf_counter()
                # OpenCV's colour NLM works in Lab and expects BGR
                d = cv2.fastNlMeansDenoisingColored(noisy[..., ::-1].copy(), None, h, h, 7, 21)[..., ::-1].copy()
                t_nlm += time.perf_counter() - t
                cands[k] = (d, float(ref.score(d)))
            rec = DecisionRecord()
            t = time.perf_counter()
            pre = preprocess(Image.fromarray(noisy), noisy, denoise="clean", record=rec, threads=1)
            t_pre += time.perf_counter() - t
            alt = preprocess(Image.fromarray(noisy), noisy, denoise="clean", record=DecisionRecord(), threads=1,
                             precision=_precisions()[1]).reference
            guard.append({"image": f.name, "ran": pre.applied, "reason": rec.preprocessing.get("reason"),
                          "sigma_est": rec.preprocessing.get("noise", {}).get("sigma")})
            data.append((f, clean, noisy, ref, cands, pre.reference, alt))
        mean_unenc = {k: float(np.mean([d[4][k][1] for d in data])) for k in NLM_FACTORS}
        best = max(mean_unenc, key=mean_unenc.get)
        nlm_pick = {"factors": NLM_FACTORS, "mean_unencoded_ssimulacra2": mean_unenc, "chosen_factor": best,
                    "h": best * sigma}
        unenc = {"noisy": [], "nlm": [], "precodec": [], "precodec_alt": []}
        for f, clean, noisy, ref, cands, den, alt in data:
            per["plain"].append(curve(ref, noisy))
            per["nlm"].append(curve(ref, cands[best][0]))
            per["precodec"].append(curve(ref, den))
            per["precodec_alt"].append(curve(ref, alt))
            unenc["noisy"].append(float(ref.score(noisy)))
            unenc["nlm"].append(cands[best][1])
            unenc["precodec"].append(float(ref.score(den)))
            unenc["precodec_alt"].append(float(ref.score(alt)))
            log(f"sigma {sigma} {f.name}: plain max {max(q for _, q in per['plain'][-1]):.1f} "
                f"nlm max {max(q for _, q in per['nlm'][-1]):.1f} "
                f"precodec max {max(q for _, q in per['precodec'][-1]):.1f}")
        mean_curve = {v: [(float(np.mean([c[j][0] for c in per[v]])), float(np.mean([c[j][1] for c in per[v]])))
                          for j in range(len(QUALITIES))] for v in per}
        summary = {}
        for v in per:
            s = {"best_quality_mean": float(np.mean([max(q for _, q in c) for c in per[v]])),
                 "unencoded_ssimulacra2_mean": float(np.mean(unenc["noisy" if v == "plain" else v]))}
            if v != "plain":
                s["bd_rate_vs_plain_pct"] = bd_rate(mean_curve["plain"], mean_curve[v])
                s["worst_rate_vs_plain_pct"] = worst_rate(mean_curve["plain"], mean_curve[v])
                s["worst_rate_vs_plain_per_image_max_pct"] = max(
                    (w for w in (worst_rate(a, b) for a, b in zip(per["plain"], per[v])) if w is not None),
                    default=None)
                s["bd_rate_per_image_median_pct"] = _median_or_none(
                    [bd_rate(a, b) for a, b in zip(per["plain"], per[v])])
            if v.startswith("precodec"):
                s["bd_rate_vs_nlm_pct"] = bd_rate(mean_curve["nlm"], mean_curve[v])
            for t in TARGETS:
                bs = [bytes_at(c, t) for c in per[v]]
                got = [b for b in bs if b is not None]
                s[f"target{t}"] = {"reached": len(got), "of": len(bs),
                                   "mean_bytes": float(np.mean(got)) if got else None}
            summary[v] = s
        res[f"sigma{sigma}"] = {"summary": summary, "mean_curve": mean_curve, "per_image": per, "nlm": nlm_pick,
                                "precodec_guard": guard,
                                "time_s": {"nlm_per_image_per_strength": t_nlm / len(files) / len(NLM_FACTORS),
                                           "precodec_per_image": t_pre / len(files)}}
    return res


def _median_or_none(v: list) -> float | None:
    v = [x for x in v if x is not None]
    return float(np.median(v)) if v else None


def bench_auto_clean_kodak(log) -> dict:
    import precodec

    rows = []
    for f in sorted((SHARED / "kodak").glob("kodim*.png")):
        off = precodec.optimize(str(f), format="jpeg", target=None, params={"quality": 85})
        auto = precodec.optimize(str(f), format="jpeg", target=None, params={"quality": 85}, denoise="auto")
        pp = auto.record.preprocessing
        rows.append({"image": f.name, "triggered": bool(pp.get("ran")), "identical": off.data == auto.data,
                     "sigma_est": pp.get("noise", {}).get("sigma"), "content": pp.get("content"),
                     "reason": pp.get("reason")})
    log(f"clean kodak auto: {sum(r['triggered'] for r in rows)} triggered, "
        f"{sum(r['identical'] for r in rows)}/{len(rows)} identical")
    return {"images": rows, "triggered": sum(r["triggered"] for r in rows),
            "identical": sum(r["identical"] for r in rows), "of": len(rows)}


def bench_ood(log) -> dict:
    import precodec

    rows = []
    for f in sorted((SHARED / "ood-dev").glob("*/*")):
        if f.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        row = {"image": f"{f.parent.name}/{f.name}", "category": f.parent.name}
        for mode in ("auto", "clean"):
            r = precodec.optimize(str(f), format="jpeg", target=None, params={"quality": 85}, denoise=mode)
            pp = r.record.preprocessing
            row[f"{mode}_ran"] = bool(pp.get("ran"))
            row["content"] = pp.get("content")
            row["content_reason"] = r.record.features.get("content", {}).get("reason")
            row["sigma_est"] = pp.get("noise", {}).get("sigma")
            row[f"{mode}_reason"] = pp.get("reason")
        rows.append(row)
    by = {}
    for r in rows:
        c = by.setdefault(r["category"], {"images": 0, "photo": 0, "auto_ran": 0, "clean_ran": 0, "classes": {}})
        c["images"] += 1
        c["photo"] += r["content"] == "photo"
        c["auto_ran"] += r["auto_ran"]
        c["clean_ran"] += r["clean_ran"]
        c["classes"][r["content"]] = c["classes"].get(r["content"], 0) + 1
    log(f"ood-dev: {json.dumps(by)}")
    return {"images": rows, "by_category": by}


def _median_time(fn, n: int = 3) -> float:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


SPEED_ROUNDS = 7


def bench_speed(log) -> dict:
    from precodec.preproc.content import classify
    from precodec.preproc.denoise import denoise_array
    from precodec.preproc.fidelity import check_fidelity
    from precodec.preproc.noise import estimate_noise

    base = load_rgb(SHARED / "kodak" / "kodim05.png")
    big = np.tile(base, (3, 2, 1))[:, :, :]  # 1536 x 1536 (2.36 MP)
    noisy = sensor_noise(big, 10, seed=7)
    mp = noisy.shape[0] * noisy.shape[1] / 1e6
    # interleaved rounds: each round times one JPEG encode and every configuration back to back, so a slow
    # spell of the shared machine hits them alike; medians over the rounds, and the ratio is the median of the
    # per-round ratios
    steps = {"jpeg": lambda: Image.fromarray(noisy).save(io.BytesIO(), "JPEG", quality=85)}
    for prec in ("fp32", "int8"):
        for th in (1, 2):
            denoise_array(noisy[:256, :256], sigma=(10, 10, 10), threads=th, precision=prec)  # warm up
            steps[f"denoise_{prec}_{th}t"] = (lambda pr=prec, t=th: denoise_array(noisy, sigma=(10, 10, 10),
                                                                                   threads=t, precision=pr))
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(SPEED_ROUNDS):
        for k, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    t_jpeg = float(np.median(times["jpeg"]))
    out = {"image": f"{noisy.shape[1]}x{noisy.shape[0]} (kodim05 tiled, sigma 10)", "megapixels": mp,
           "jpeg_encode_ms_per_mp": t_jpeg / mp * 1e3, "rounds": SPEED_ROUNDS}
    for k in steps:
        if k == "jpeg":
            continue
        t = float(np.median(times[k]))
        ratio = float(np.median(np.array(times[k]) / np.array(times["jpeg"])))
        out[k] = {"ms_per_mp": t / mp * 1e3, "x_jpeg_encode": ratio}
        log(f"speed {k}: {t / mp * 1e3:.0f} ms/MP = {ratio:.1f}x a JPEG encode (median of {SPEED_ROUNDS} rounds)")
    den = denoise_array(noisy, sigma=(10, 10, 10), threads=2)
    for name, fn in (("noise_estimate", lambda: estimate_noise(noisy)), ("content_guard", lambda: classify(noisy)),
                     ("fidelity_guard", lambda: check_fidelity(noisy, den, sigma=10.0))):
        t = _median_time(fn)
        out[name] = {"ms_per_mp": t / mp * 1e3, "x_jpeg_encode": t / t_jpeg}
    return out


_MEM_CHILD = r"""
import sys, time, numpy as np


def hwm_kib():
    # VmHWM (peak resident set) of this process image; unlike getrusage's ru_maxrss it does not
    # carry over the parent's peak through fork + exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])


from PIL import Image
sys.path.insert(0, %(bench)r)
from bench_denoise import sensor_noise, load_rgb, SHARED
base = load_rgb(SHARED / "kodak" / "kodim05.png")
img = np.empty((4000, 6000, 3), np.uint8)
for y in range(0, 4000, 250):  # in stripes, so the baseline RSS stays small
    img[y:y + 250] = sensor_noise(np.tile(base, (1, 8, 1))[(y - (y // 500) * 500):(y - (y // 500) * 500) + 250, :6000], 10, seed=y)
im = Image.fromarray(img)
from precodec.preproc import preprocess
from precodec.record import DecisionRecord
import precodec.models, precodec.preproc.denoise, onnxruntime
rss0 = hwm_kib()
t = time.perf_counter()
rec = DecisionRecord()
p = preprocess(im, img, denoise="clean", record=rec, threads=%(threads)d)
dt = time.perf_counter() - t
rss1 = hwm_kib()
print({"before_kib": rss0, "peak_kib": rss1, "applied": p.applied, "seconds": dt,
       "reason": rec.preprocessing.get("reason")})
"""


def bench_memory(log, threads: int = 2) -> dict:
    code = _MEM_CHILD % {"bench": str(Path(__file__).resolve().parent), "threads": threads}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"error": r.stderr[-2000:]}
    d = eval(r.stdout.strip().splitlines()[-1])  # a dict literal we printed
    d["peak_mib"] = d["peak_kib"] / 1024
    d["increase_mib"] = (d["peak_kib"] - d["before_kib"]) / 1024
    d["image"] = "6000x4000 (24 MP), sigma 10, denoise='clean'"
    log(f"memory 24MP: peak {d['peak_mib']:.0f} MiB (process), +{d['increase_mib']:.0f} MiB during preprocess")
    return d


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SIGMAS), figsize=(5 * len(SIGMAS), 4.2), sharey=True)
    for ax, sigma in zip(axes, SIGMAS):
        mc = res["curves"][f"sigma{sigma}"]["mean_curve"]
        for v, style in (("plain", "k-o"), ("nlm", "b-s"), ("precodec", "r-^"), ("precodec_alt", "m:v")):
            if v not in mc:
                continue
            b = [p[0] / 1024 for p in mc[v]]
            q = [p[1] for p in mc[v]]
            ax.plot(b, q, style, ms=4, label=_label(v, res))
        ax.set_xscale("log")
        ax.set_title(f"Kodak + noise sigma {sigma}")
        ax.set_xlabel("mean KiB per image (JPEG)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SSIMULACRA2 vs clean original")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _label(v: str, res: dict) -> str:
    """Table and legend name of a curve: the precodec curves name their model build."""
    if v == "precodec":
        return f"precodec ({res.get('default_precision', 'fp32')}, default)"
    if v == "precodec_alt":
        return f"precodec ({res.get('alt_precision', 'int8')})"
    return v


def write_md(res: dict, path: Path, cmd: str) -> None:
    L = [f"# Denoiser benchmark\n", f"Command: `{cmd}`  ", f"Run: {res['date']}, {res['machine']}; "
         f"{res['runtime_s']:.0f} s.  Kodak images for the curves: {res['kodak_images']} "
         f"({len(res['kodak_images'])} of 24, evenly spaced)." , ""]
    for part, src in res.get("kept", {}).items():
        L.insert(-1, f"Part `{part}` is kept from an earlier run, not rerun: made {src['date']} by "
                     f"`{src['command']}`.  ")
    L.append("## Noisy Kodak: SSIMULACRA2 against the clean original (JPEG, libjpeg via Pillow, 4:2:0)\n")
    L.append("| sigma | method | best quality (mean) | BD-rate vs plain | BD-rate vs NLM | images reaching 70 "
             "| mean bytes at 70 | images reaching 80 | mean bytes at 80 | unencoded score |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v, s="": "n/a" if v is None else f"{v:+.1f}%{s}" if isinstance(v, float) else str(v)  # noqa
    for sigma in SIGMAS:
        r = res["curves"][f"sigma{sigma}"]
        for v in ("plain", "nlm", "precodec", "precodec_alt"):
            if v not in r["summary"]:
                continue
            s = r["summary"][v]
            name = _label(v, res) if v != "nlm" else f"NLM h={r['nlm']['h']:.1f}"
            t70, t80 = s["target70"], s["target80"]
            L.append(
                f"| {sigma} | {name} | {s['best_quality_mean']:.1f} | "
                f"{fmt(s.get('bd_rate_vs_plain_pct')) if v != 'plain' else '-'} | "
                f"{fmt(s.get('bd_rate_vs_nlm_pct')) if v.startswith('precodec') else '-'} | "
                f"{t70['reached']}/{t70['of']} | {t70['mean_bytes'] and round(t70['mean_bytes'])} | "
                f"{t80['reached']}/{t80['of']} | {t80['mean_bytes'] and round(t80['mean_bytes'])} | "
                f"{s['unencoded_ssimulacra2_mean']:.1f} |")
    L.append("\nBD-rate: mean log-bytes difference at equal SSIMULACRA2 over the common quality range of the mean "
             "curves (negative = fewer bytes); 'n/a' when the ranges do not overlap.  Mean bytes at a target are "
             "over the images that reach it.  NLM strength is the oracle pick (see the JSON).\n")
    L.append("## Goals\n")
    L.append("| goal | measured | met |")
    L.append("|---|---|---|")
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    for sigma in SIGMAS:
        sm = res["curves"][f"sigma{sigma}"]["summary"]
        pc, pl, nl = sm["precodec"], sm["plain"], sm["nlm"]
        if sigma >= 10:
            bd = pc["bd_rate_vs_plain_pct"]
            L.append(f"| sigma {sigma}: BD-rate vs plain <= -30% | {fmt(bd)} | {yes(bd is not None and bd <= -30)} |")
            gain = pc["best_quality_mean"] - pl["best_quality_mean"]
            L.append(f"| sigma {sigma}: best quality >= plain + 10 | {gain:+.1f} points | {yes(gain >= 10)} |")
        else:
            w, wi = pc["worst_rate_vs_plain_pct"], pc["worst_rate_vs_plain_per_image_max_pct"]
            L.append(f"| sigma {sigma}: no loss vs plain anywhere (worst bytes difference at equal quality, mean "
                     f"curve / worst image) | {fmt(w)} / {fmt(wi)} | {yes(w is not None and w <= 0)} |")
        bn = pc["bd_rate_vs_nlm_pct"]
        dq = pc["best_quality_mean"] - nl["best_quality_mean"]
        L.append(f"| sigma {sigma}: beat NLM (BD-rate vs NLM < 0 and higher best quality) | {fmt(bn)}, "
                 f"{dq:+.1f} points | {yes(bn is not None and bn < 0 and dq > 0)} |")
    k = res["auto_clean_kodak"]
    L.append(f"| clean Kodak: `auto` triggers on no image | {k['triggered']} of {k['of']} | "
             f"{yes(k['triggered'] == 0)} |")
    guarded = {c: d for c, d in res["ood"]["by_category"].items() if c in GUARDED_OOD}
    ran = sum(d["auto_ran"] + d["clean_ran"] for d in guarded.values())
    L.append(f"| ood-dev: no learned preprocessing on any {', '.join(sorted(guarded))} image (`auto` or `clean`) | "
             f"{ran} runs on {sum(d['images'] for d in guarded.values())} images | {yes(ran == 0)} |")
    dp = res.get("default_precision", "fp32")
    sp = res["speed"].get(f"denoise_{dp}_2t")
    if sp:
        L.append(f"| at most {SPEED_GOAL_MS_PER_MP} ms per megapixel with 2 threads ({dp}, the default build) | "
                 f"{sp['ms_per_mp']:.0f} ms/MP | {yes(sp['ms_per_mp'] <= SPEED_GOAL_MS_PER_MP)} |")
    m = res["memory"]
    if "error" not in m:
        L.append(f"| peak memory under 1 GiB on 24 megapixels (whole process) | {m['peak_mib']:.0f} MiB | "
                 f"{yes(m['peak_mib'] < 1024)} |")
    L.append("")
    L.append(f"## Clean Kodak, `denoise=\"auto\"`\n\n{k['triggered']} of {k['of']} triggered; "
             f"{k['identical']} of {k['of']} outputs byte-identical to `denoise=\"off\"`.  Noise estimates: "
             f"max {max(r['sigma_est'] for r in k['images']):.2f} (auto threshold "
             f"{res['auto_threshold']}).\n")
    L.append("## ood-dev: content class and learned preprocessing\n")
    L.append("| category | images | classified photo | classes | auto ran | clean ran |")
    L.append("|---|---|---|---|---|---|")
    for c, d in res["ood"]["by_category"].items():
        L.append(f"| {c} | {d['images']} | {d['photo']} | {d['classes']} | {d['auto_ran']} | {d['clean_ran']} |")
    L.append("")
    sp = res["speed"]
    L.append(f"## Speed ({sp['image']}; ratio to one JPEG q85 encode of the same image in the same run, "
             f"{sp['jpeg_encode_ms_per_mp']:.1f} ms/MP here)\n")
    L.append("| step | ms per MP | x JPEG encode |")
    L.append("|---|---|---|")
    for k2, v in sp.items():
        if isinstance(v, dict):
            L.append(f"| {k2} | {v['ms_per_mp']:.0f} | {v['x_jpeg_encode']:.1f} |")
    m = res["memory"]
    if "error" not in m:
        L.append(f"\nPeak memory, {m['image']}: {m['peak_mib']:.0f} MiB for the whole process "
                 f"(+{m['increase_mib']:.0f} MiB during `preprocess`, {m['seconds']:.1f} s, applied={m['applied']}).")
        if m.get("command"):
            L.append(f"Memory measured by: `{m['command']}` ({m.get('note', '')}).")
    L.append("\nThe machine is a shared 2-core VM with other jobs running: absolute times are noisy; ratios were "
             "measured back to back.\n")
    path.write_text("\n".join(L) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8, help="Kodak images for the curves (evenly spaced)")
    ap.add_argument("--name", default="denoise")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: curves,auto,ood,speed,memory")
    ap.add_argument("--keep", default="",
                    help="comma list of parts (curves,auto,ood,speed,memory) not rerun but kept from the earlier "
                         "JSON of the same --name; the output names the command that made them")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the Markdown table and the plot from the JSON of an earlier run")
    args = ap.parse_args(argv)
    if args.render_only:
        res = json.loads((OUT / f"{args.name}.json").read_text())
        plot(res, OUT / f"{args.name}.png")
        write_md(res, OUT / f"{args.name}.md", res["command"])
        return
    skip = set(filter(None, args.skip.split(",")))
    keep = set(filter(None, args.keep.split(",")))
    parts = {"curves", "auto", "ood", "speed", "memory"}  # the steps table below
    if keep - parts or skip - parts:
        raise SystemExit(f"unknown part in --skip/--keep: {sorted((keep | skip) - parts)}")
    old = json.loads((OUT / f"{args.name}.json").read_text()) if keep else {}
    t0 = time.time()
    log = lambda s: print(f"[{time.time() - t0:6.0f}s] {s}", flush=True)  # noqa: E731
    import onnxruntime

    import precodec
    from precodec import models
    from precodec.preproc import AUTO_THRESHOLD

    files = kodak_files(args.images)
    res: dict = {"command": "OMP_NUM_THREADS=1 /work/venv/bin/python benchmarks/bench_denoise.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} {platform.processor() or ''} {__import__('os').cpu_count()} cores".strip(),
        "versions": {"precodec": precodec.__version__, "onnxruntime": onnxruntime.__version__,
                     "pillow": Image.__version__, "numpy": np.__version__},
        "model": {k: models.manifest("denoiser")[k] for k in ("name", "version", "sha256", "parameters")},
        "kodak_images": [f.name for f in files], "auto_threshold": AUTO_THRESHOLD, "qualities": QUALITIES,
        "default_precision": _precisions()[0], "alt_precision": _precisions()[1]}
    import cv2

    res["versions"]["opencv"] = cv2.__version__
    # part -> (result key, how to run it, what a skipped part records)
    steps = {"curves": ("curves", lambda: bench_curves(files, log), {}),
             "auto": ("auto_clean_kodak", lambda: bench_auto_clean_kodak(log), {}),
             "ood": ("ood", lambda: bench_ood(log), {}),
             "speed": ("speed", lambda: bench_speed(log), {}),
             "memory": ("memory", lambda: bench_memory(log), {"error": "skipped"})}
    if keep:
        # per kept part, the run that made it (a part the earlier run had itself kept keeps its source)
        made_by = {"command": old["command"], "date": old["date"]}
        res["kept"] = {part: old.get("kept", {}).get(part, made_by) for part in sorted(keep)}
        res["kodak_images"] = old["kodak_images"]
        if "curves" in keep:
            res["default_precision"] = old.get("default_precision", "fp32")
            res["alt_precision"] = old.get("alt_precision", "int8")
    for part, (key, run, skipped) in steps.items():
        res[key] = old[key] if part in keep else skipped if part in skip else run()
    res["runtime_s"] = time.time() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    if not skip:
        plot(res, OUT / f"{args.name}.png")
        write_md(res, OUT / f"{args.name}.md", res["command"])
    log("done")


if __name__ == "__main__":
    main()
