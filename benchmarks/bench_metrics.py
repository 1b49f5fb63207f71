"""SSIMULACRA2: precodec's implementation against the reference C++ scores and the PyPI ``ssimulacra2``.

Command (from the repository root)::

    nice -n 5 /work/venv/bin/python benchmarks/bench_metrics.py

Writes ``benchmarks/results/metrics.{json,md,png}``.

1. Agreement: every pair of ``../shared/reference/ssimulacra2/scores*.csv``
   (66 pairs, scored by the reference C++ tool, SSIMULACRA 2.1) is scored by
   :func:`precodec.metrics.ssimulacra2` and by the PyPI package
   ``ssimulacra2`` (``compute_ssimulacra2``); max / mean absolute deviation
   from the reference for both.
2. Speed on 768x512 Kodak pairs, both implementations in this process,
   interleaved pair by pair, median of ``--repeats`` runs per pair:

   * *end to end*: from the two PNG paths to the score (PNG decoding
     included), since the PyPI function takes paths;
   * *compute only*: decoded images in memory (the PyPI module's ``Image``
     is pointed at a shim returning the already decoded images);
   * *cached reference*: :class:`~precodec.metrics.Ssimulacra2Reference`
     built once, then ``.score`` per candidate (the tuners' use).

   Wall time and process CPU time (all threads) are both reported; the
   machine is shared, so the ratios (PyPI / precodec, same run) are what
   count.  PSNR / SSIM / MS-SSIM times are listed for scale.
3. Before / after: precodec's own SSIMULACRA2 at git revision
   ``--baseline-rev`` (default: the last commit before the speed-up work),
   extracted from git into a temporary package, against the current code,
   on the same 768x512 pairs with OpenCV limited to 1 and then 2 threads
   (``cv2.setNumThreads``; the current code takes its thread budget from
   it).  Each implementation is timed alone in fresh Python processes
   (``--rounds`` each, alternating), median of ``--repeats`` runs per pair:
   preparing the reference
   (``Ssimulacra2Reference(original)``), one comparison with a prepared
   reference (``.score``), one-shot scoring of decoded images
   (``ssimulacra2(a, b)``) and end to end from the two PNG files.  The
   agreement of the baseline with the reference scores is measured too.

Kodak is evaluation-only: nothing here trains or tunes anything.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent
# last commit before the SSIMULACRA2 speed-up (workspaces, faster replay, helper thread)
BASELINE_REV = "0743198"


def _shared(arg: str | None) -> Path:
    for cand in [arg, os.environ.get("PRECODEC_SHARED"), str(REPO.parent / "shared")]:
        if cand and (Path(cand) / "reference" / "ssimulacra2").is_dir():
            return Path(cand)
    sys.exit("../shared (reference scores) not found; pass --shared")


def load_pairs(shared: Path) -> list[dict]:
    folder = shared / "reference" / "ssimulacra2"
    kodak = shared / "datasets" / "kodak"
    pairs = []
    for name, ref_dir in (("scores.csv", kodak), ("scores_small.csv", folder)):
        with open(folder / name, newline="") as f:
            for row in csv.DictReader(f):
                pairs.append(
                    {
                        "reference": str(ref_dir / row["reference"]),
                        "distorted": str(folder / row["distorted"]),
                        "reference_score": float(row["ssimulacra2"]),
                        "set": name,
                    }
                )
    return pairs


class _PreloadedImage:
    """Stands in for ``PIL.Image`` inside the PyPI module: ``open`` returns decoded images."""

    def __init__(self, cache: dict[str, Image.Image]) -> None:
        self.cache = cache

    def open(self, path):  # noqa: A003 - mirrors PIL.Image.open
        return self.cache[str(path)]


def _timed(fn) -> tuple[float, float, object]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def _exact_blur_score(a, b) -> float:
    """Ablation: precodec with the exact (FIR) blur on every scale, no float32 replay."""
    mod = sys.modules["precodec.metrics.ssimulacra2"]
    saved = mod._REPLAY_FROM_SCALE
    mod._REPLAY_FROM_SCALE = 99
    try:
        return mod.ssimulacra2(a, b)
    finally:
        mod._REPLAY_FROM_SCALE = saved


def agreement(pairs: list[dict]) -> None:
    from ssimulacra2 import compute_ssimulacra2

    from precodec.metrics import ssimulacra2

    for i, p in enumerate(pairs):
        a = Image.open(p["reference"])
        b = Image.open(p["distorted"])
        p["precodec"] = ssimulacra2(a, b)
        p["precodec_exact_blur"] = _exact_blur_score(a, b)
        p["pypi"] = compute_ssimulacra2(p["reference"], p["distorted"])
        print(
            f"[{i + 1}/{len(pairs)}] {Path(p['distorted']).name}: ref {p['reference_score']:.4f} "
            f"precodec {p['precodec']:.4f} pypi {p['pypi']:.4f}",
            file=sys.stderr,
        )


def _summary(pairs: list[dict], key: str) -> dict:
    dev = np.array([abs(p[key] - p["reference_score"]) for p in pairs])
    worst = int(np.argmax(dev))
    return {
        "max_abs_dev": float(dev.max()),
        "mean_abs_dev": float(dev.mean()),
        "median_abs_dev": float(np.median(dev)),
        "pairs_over_0.5": int((dev > 0.5).sum()),
        "worst_pair": Path(pairs[worst]["distorted"]).name,
    }


def speed(pairs: list[dict], repeats: int) -> dict:
    import ssimulacra2.ssimulacra2 as pypi_mod

    from precodec.metrics import Ssimulacra2Reference, ms_ssim, psnr, ssim, ssimulacra2

    by_ref: dict[str, list[dict]] = {}
    for p in pairs:
        if p["set"] == "scores.csv":
            by_ref.setdefault(p["reference"], []).append(p)
    # one distortion per Kodak image, cycling through the distortion kinds
    chosen = [group[i % len(group)] for i, group in enumerate(by_ref.values())]
    rows = {k: {"wall": [], "cpu": []} for k in ("pypi_e2e", "ours_e2e", "pypi_mem", "ours_mem", "ours_cached")}
    classic = {k: [] for k in ("psnr", "ssim", "ms_ssim")}
    for p in chosen:
        ra, rb = p["reference"], p["distorted"]
        a_img, b_img = Image.open(ra).convert("RGB"), Image.open(rb).convert("RGB")
        a_img.load()
        b_img.load()
        a, b = np.asarray(a_img), np.asarray(b_img)
        prepared = Ssimulacra2Reference(a)
        shim = _PreloadedImage({ra: a_img, rb: b_img})
        real_image = pypi_mod.Image
        per = {k: {"wall": [], "cpu": []} for k in rows}
        for _ in range(repeats):
            tasks = {
                "pypi_e2e": lambda: pypi_mod.compute_ssimulacra2(ra, rb),
                "ours_e2e": lambda: ssimulacra2(Image.open(ra), Image.open(rb)),
                "ours_mem": lambda: ssimulacra2(a, b),
                "ours_cached": lambda: prepared.score(b),
            }
            for key, fn in tasks.items():
                w, c, _ = _timed(fn)
                per[key]["wall"].append(w)
                per[key]["cpu"].append(c)
            pypi_mod.Image = shim
            try:
                w, c, _ = _timed(lambda: pypi_mod.compute_ssimulacra2(ra, rb))
            finally:
                pypi_mod.Image = real_image
            per["pypi_mem"]["wall"].append(w)
            per["pypi_mem"]["cpu"].append(c)
            for name, fn in (("psnr", psnr), ("ssim", ssim), ("ms_ssim", ms_ssim)):
                w, _, _ = _timed(lambda: fn(a, b))
                classic[name].append(w)
        for key in rows:
            rows[key]["wall"].append(statistics.median(per[key]["wall"]))
            rows[key]["cpu"].append(statistics.median(per[key]["cpu"]))
        print(f"timed {Path(rb).name}", file=sys.stderr)

    def med_ms(key: str, kind: str) -> float:
        return 1000 * statistics.median(rows[key][kind])

    result = {
        "pairs": [Path(p["distorted"]).name for p in chosen],
        "size": "768x512",
        "repeats": repeats,
        "median_ms": {k: {"wall": med_ms(k, "wall"), "cpu": med_ms(k, "cpu")} for k in rows},
        "classic_median_ms": {k: 1000 * statistics.median(v) for k, v in classic.items()},
    }
    ratios = {}
    for label, ours in (("end_to_end", "ours_e2e"), ("compute_only", "ours_mem"), ("cached_reference", "ours_cached")):
        base = "pypi_e2e" if label == "end_to_end" else "pypi_mem"
        ratios[label] = {
            kind: result["median_ms"][base][kind] / result["median_ms"][ours][kind] for kind in ("wall", "cpu")
        }
    result["speedup_vs_pypi"] = ratios
    return result


def load_baseline(rev: str, into: Path):
    """precodec.metrics as of git ``rev``, importable as ``precodec_baseline.metrics`` (None if unavailable)."""
    pkg = into / "precodec_baseline"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    try:
        for name in ("errors.py", "metrics/__init__.py", "metrics/ssimulacra2.py", "metrics/_gauss.py",
                     "metrics/_color.py", "metrics/classic.py"):
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:precodec/{name}"],
                                  check=True, capture_output=True, text=True).stdout
            (pkg / name).write_text(text)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev} not available ({exc}); skipping before/after", file=sys.stderr)
        return None
    sys.path.insert(0, str(into))
    return importlib.import_module("precodec_baseline.metrics")


CASES = ("prepare", "compare", "one_shot", "end_to_end")


def _chosen(pairs: list[dict]) -> list[dict]:
    """One distortion per Kodak image, cycling through the distortion kinds."""
    by_ref: dict[str, list[dict]] = {}
    for p in pairs:
        if p["set"] == "scores.csv":
            by_ref.setdefault(p["reference"], []).append(p)
    return [group[i % len(group)] for i, group in enumerate(by_ref.values())]


def worker(impl: str, threads: int, repeats: int, shared: Path, baseline_dir: str | None) -> dict:
    """Time one implementation in this (fresh) process; median per pair and case."""
    import cv2

    cv2.setNumThreads(threads)
    if impl == "base":
        sys.path.insert(0, str(baseline_dir))
        mod = importlib.import_module("precodec_baseline.metrics")
    else:
        mod = importlib.import_module("precodec.metrics")
    ref_cls, fn = mod.Ssimulacra2Reference, mod.ssimulacra2
    out: dict = {case: {"wall": [], "cpu": []} for case in CASES}
    for p in _chosen(load_pairs(shared)):
        ra, rb = p["reference"], p["distorted"]
        a = np.asarray(Image.open(ra).convert("RGB"))
        b = np.asarray(Image.open(rb).convert("RGB"))
        prepared = ref_cls(a)
        tasks = {
            "prepare": lambda: ref_cls(a),
            "compare": lambda: prepared.score(b),
            "one_shot": lambda: fn(a, b),
            "end_to_end": lambda: fn(Image.open(ra), Image.open(rb)),
        }
        for task in tasks.values():  # warm-up
            task()
        runs = {case: {"wall": [], "cpu": []} for case in CASES}
        for _ in range(repeats):
            for case, task in tasks.items():
                w, c, _ = _timed(task)
                runs[case]["wall"].append(w)
                runs[case]["cpu"].append(c)
        for case in CASES:
            for kind in ("wall", "cpu"):
                out[case][kind].append(statistics.median(runs[case][kind]))
    return out


def before_after(pairs: list[dict], repeats: int, base, rev: str, baseline_dir: Path, shared: Path,
                 rounds: int) -> dict:
    """Before / after, each implementation alone in a fresh process (alternating, ``rounds`` each)."""
    for p in pairs:  # agreement of the baseline, for the accuracy before / after
        p["baseline"] = base.ssimulacra2(Image.open(p["reference"]), Image.open(p["distorted"]))
    result: dict = {"baseline_rev": rev, "pairs": [Path(p["distorted"]).name for p in _chosen(pairs)],
                    "rounds": rounds, "threads": {}}
    for threads in (1, 2):
        per_pair = {f"{impl}_{case}": {"wall": [], "cpu": []} for impl in ("base", "new") for case in CASES}
        for r in range(rounds):
            for impl in ("base", "new") if r % 2 == 0 else ("new", "base"):
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--threads", str(threads),
                       "--repeats", str(repeats), "--shared", str(shared), "--baseline-dir", str(baseline_dir)]
                proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
                got = json.loads(proc.stdout.strip().splitlines()[-1])
                for case in CASES:
                    for kind in ("wall", "cpu"):
                        per_pair[f"{impl}_{case}"][kind].extend(got[case][kind])
                print(f"before/after, {threads} thread(s), round {r + 1}/{rounds}: {impl} done", file=sys.stderr)
        med = {k: {kind: 1000 * statistics.median(v[kind]) for kind in ("wall", "cpu")} for k, v in per_pair.items()}
        result["threads"][str(threads)] = {
            "median_ms": med,
            "speedup": {case: {kind: med[f"base_{case}"][kind] / med[f"new_{case}"][kind] for kind in ("wall", "cpu")}
                        for case in CASES},
        }
    return result


def plot(pairs: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = np.array([p["reference_score"] for p in pairs])
    ours = np.array([p["precodec"] for p in pairs])
    pypi = np.array([p["pypi"] for p in pairs])
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5))
    lo, hi = min(ref.min(), pypi.min()) - 3, 101
    ax1.plot([lo, hi], [lo, hi], color="0.7", lw=1)
    ax1.scatter(ref, pypi, s=22, marker="x", color="tab:orange", label="PyPI ssimulacra2 0.3")
    ax1.scatter(ref, ours, s=18, facecolors="none", edgecolors="tab:blue", label="precodec")
    ax1.set_xlabel("reference C++ score (SSIMULACRA 2.1)")
    ax1.set_ylabel("implementation score")
    ax1.set_title("Scores on the 66 reference pairs")
    ax1.legend()
    order = np.argsort(ref)
    x = np.arange(len(ref))
    for ax, diff, style, colour, label in (
        (ax2, pypi - ref, "x", "tab:orange", "PyPI - reference"),
        (ax3, ours - ref, "o", "tab:blue", "precodec - reference"),
    ):
        ax.axhline(0, color="0.7", lw=1)
        ax.plot(x, diff[order], style, mfc="none", color=colour)
        ax.set_xlabel("pairs, sorted by reference score")
        ax.set_ylabel("score difference (points)")
        ax.set_title(f"{label} (max |d| {np.abs(diff).max():.3f})")
    lim = max(0.5, float(np.abs(ours - ref).max()) * 1.2)
    ax3.set_ylim(-lim, lim)
    ax3.axhspan(-0.5, 0.5, color="tab:green", alpha=0.08, label="required: |d| <= 0.5")
    ax3.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def markdown(res: dict) -> str:
    ag = res["agreement"]
    sp = res["speed"]
    lines = [
        "# SSIMULACRA2: precodec vs the reference C++ tool and the PyPI package",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Machine: {res['machine']['cpus']} CPUs, {res['machine']['platform']}, Python {res['machine']['python']}; "
        "shared with other jobs, so compare ratios, not absolute times.",
        "",
        f"## Agreement with the reference scores ({ag['pairs']} pairs: 48 Kodak + 18 edge cases)",
        "",
        "| implementation | max abs dev | mean abs dev | median abs dev | pairs > 0.5 | worst pair |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, label in (
        ("precodec", "precodec"),
        ("precodec_exact_blur", "precodec, exact blur on all scales (ablation)"),
        ("pypi", "PyPI ssimulacra2 0.3.0"),
    ):
        s = ag[key]
        lines.append(
            f"| {label} | {s['max_abs_dev']:.4f} | {s['mean_abs_dev']:.4f} | {s['median_abs_dev']:.4f} "
            f"| {s['pairs_over_0.5']} | {s['worst_pair']} |"
        )
    lines += [
        "",
        "The ablation row shows why precodec replays libjxl's float32 recursive Gaussian on the scales 1:4 to 1:32: "
        "the reference's undamped rounding noise (~1e-6) is part of its scores on high-quality pairs, so the "
        "mathematically exact blur drifts from them by up to the amount shown. The PyPI package differs more: its "
        "blur is scipy's Gaussian with zeros beyond one axis and a reflected border on the other (the reference "
        "zero-pads both), and it decides the number of scales after downsampling (so small images use fewer scales "
        "and shifted weights); it also takes file paths only.",
    ]
    m = sp["median_ms"]
    r = sp["speedup_vs_pypi"]
    lines += [
        "",
        f"## Speed on {sp['size']} Kodak pairs ({len(sp['pairs'])} pairs, median of {sp['repeats']} runs each, "
        "then median over pairs)",
        "",
        "| case | PyPI wall ms | precodec wall ms | speed-up (wall) | PyPI CPU ms | precodec CPU ms | speed-up (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, ours, base, key in (
        ("end to end (PNG paths)", "ours_e2e", "pypi_e2e", "end_to_end"),
        ("compute only (decoded images)", "ours_mem", "pypi_mem", "compute_only"),
        ("cached reference (`Ssimulacra2Reference.score`)", "ours_cached", "pypi_mem", "cached_reference"),
    ):
        lines.append(
            f"| {label} | {m[base]['wall']:.1f} | {m[ours]['wall']:.1f} | {r[key]['wall']:.2f}x "
            f"| {m[base]['cpu']:.1f} | {m[ours]['cpu']:.1f} | {r[key]['cpu']:.2f}x |"
        )
    ba = res.get("before_after")
    if ba:
        acc = res["agreement"]
        lines += [
            "",
            f"## Before / after: precodec now vs precodec at `{ba['baseline_rev']}` "
            f"(768x512 Kodak, {len(ba['pairs'])} pairs, median of {sp['repeats']} runs per pair in each of "
            f"{ba['rounds']} fresh processes per implementation, then median over pairs and processes)",
            "",
            "Each implementation runs alone in its own fresh Python process (alternating before / after), so "
            "each keeps its own memory-allocator behaviour (in one process the faster code's one-off glibc "
            "threshold warm-up would speed the old code up too). OpenCV is limited to the stated number of threads "
            "with `cv2.setNumThreads`; the current code's `threads` defaults to that, and with 2 it runs the "
            "coarse-scale replay in one helper thread beside the fine scales. The machine (2 cores) was shared "
            "with other jobs, which blunts any gain from a second thread.",
            "",
            "| threads | case | before wall ms | after wall ms | speed-up (wall) | before CPU ms | after CPU ms "
            "| speed-up (CPU) |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        labels = {
            "prepare": "prepare the reference (`Ssimulacra2Reference(a)`)",
            "compare": "one comparison, prepared reference (`.score(b)`)",
            "one_shot": "one-shot, decoded images (`ssimulacra2(a, b)`)",
            "end_to_end": "end to end from the PNG files",
        }
        for threads, block in ba["threads"].items():
            med, spd = block["median_ms"], block["speedup"]
            for case, label in labels.items():
                lines.append(
                    f"| {threads} | {label} | {med['base_' + case]['wall']:.1f} | {med['new_' + case]['wall']:.1f} "
                    f"| {spd[case]['wall']:.2f}x | {med['base_' + case]['cpu']:.1f} | {med['new_' + case]['cpu']:.1f} "
                    f"| {spd[case]['cpu']:.2f}x |"
                )
        if "baseline" in acc:
            b, n = acc["baseline"], acc["precodec"]
            lines += [
                "",
                f"Accuracy before / after (all {acc['pairs']} pairs): max abs deviation {b['max_abs_dev']:.4f} / "
                f"{n['max_abs_dev']:.4f}, mean {b['mean_abs_dev']:.4f} / {n['mean_abs_dev']:.4f}; "
                f"{acc.get('identical_to_baseline', '?')} of {acc['pairs']} scores bit-identical.",
            ]
    c = sp["classic_median_ms"]
    lines += [
        "",
        f"For scale, on the same pairs (wall ms): PSNR {c['psnr']:.1f}, SSIM {c['ssim']:.1f}, "
        f"MS-SSIM {c['ms_ssim']:.1f}.",
        "",
        "CPU time counts every thread (OpenCV may use several); the PyPI package is single-threaded numpy/scipy.",
        "",
        "![scores](metrics.png)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=None, help="path of ../shared (default: beside the repository)")
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per pair and implementation")
    ap.add_argument("--out", default=str(RESULTS), help="output folder")
    ap.add_argument("--replot", action="store_true", help="only redraw metrics.{md,png} from metrics.json")
    ap.add_argument("--baseline-rev", default=BASELINE_REV,
                    help="git revision whose precodec.metrics is the 'before' of the before/after table")
    ap.add_argument("--rounds", type=int, default=3,
                    help="fresh processes per implementation and thread count in the before/after timing")
    ap.add_argument("--worker", choices=("base", "new"), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--baseline-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        res = json.loads((out / "metrics.json").read_text())
        (out / "metrics.md").write_text(markdown(res))
        plot([{"reference_score": p["reference_score"], "precodec": p["precodec"], "pypi": p["pypi"]}
              for p in res["per_pair"]], out / "metrics.png")
        return 0

    shared = _shared(args.shared)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.repeats, shared, args.baseline_dir)))
        return 0

    import cv2
    import ssimulacra2 as pypi_pkg

    import precodec

    pairs = load_pairs(shared)
    agreement(pairs)
    spd = speed(pairs, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        base = load_baseline(args.baseline_rev, Path(tmp))
        ba = (before_after(pairs, args.repeats, base, args.baseline_rev, Path(tmp), shared, args.rounds)
              if base is not None else None)
    res = {
        "command": "nice -n 5 /work/venv/bin/python benchmarks/bench_metrics.py"
        + (f" --repeats {args.repeats}" if args.repeats != 7 else "")
        + (f" --baseline-rev {args.baseline_rev}" if args.baseline_rev != BASELINE_REV else "")
        + (f" --rounds {args.rounds}" if args.rounds != 3 else ""),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "precodec": precodec.__version__,
            "pypi_ssimulacra2": pypi_pkg.__version__,
        },
        "agreement": {
            "pairs": len(pairs),
            "precodec": _summary(pairs, "precodec"),
            "precodec_exact_blur": _summary(pairs, "precodec_exact_blur"),
            "pypi": _summary(pairs, "pypi"),
            **({"baseline": _summary(pairs, "baseline"),
                "identical_to_baseline": sum(p["baseline"] == p["precodec"] for p in pairs)} if ba else {}),
        },
        "speed": spd,
        "before_after": ba,
        "per_pair": [
            {
                "reference": Path(p["reference"]).name,
                "distorted": Path(p["distorted"]).name,
                "reference_score": p["reference_score"],
                "precodec": round(p["precodec"], 6),
                "precodec_exact_blur": round(p["precodec_exact_blur"], 6),
                "pypi": round(p["pypi"], 6),
                **({"baseline": round(p["baseline"], 6)} if "baseline" in p else {}),
            }
            for p in pairs
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "metrics.md").write_text(markdown(res))
    plot(pairs, out / "metrics.png")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
