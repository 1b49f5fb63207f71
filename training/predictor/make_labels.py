"""Training labels for the parameter predictor: SSIMULACRA2 and bytes on a quality grid.

For every training image (``../shared/datasets/train``: BSDS432 as is, the
Wikipedia photographs downscaled to at most 512 px and also a 384x384
full-resolution centre crop), and every configuration of
:mod:`precodec.tuners.space`, encode at each quality of the format's grid,
decode, score against the original with precodec's SSIMULACRA2, and append
one JSON line per image to ``training/runs/predictor/labels.jsonl``.

Resumable (images already in the file are skipped), seeded order (any prefix
is a random sample), AVIF labels for every third image only (AVIF encodes
dominate the cost).  Run it with one process, niced::

    OMP_NUM_THREADS=1 nice -n 10 python training/predictor/make_labels.py

Never reads Kodak.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "datasets" / "train"
OUT = ROOT / "training" / "runs" / "predictor" / "labels.jsonl"


def training_items(data: Path = DATA) -> list[tuple[str, str, str]]:
    """(item id, file path, transform) for every training sample, seeded shuffled order."""
    items = []
    for p in sorted((data / "bsds432").glob("*")):
        items.append((f"bsds432/{p.name}", str(p), "as-is"))
    for p in sorted((data / "wikipedia").glob("*")):
        items.append((f"wikipedia/{p.name}#down512", str(p), "down512"))
        items.append((f"wikipedia/{p.name}#crop384", str(p), "crop384"))
    assert not any("kodak" in i[1] for i in items)
    random.Random(1234).shuffle(items)
    return items


def load_item(path: str, transform: str) -> Image.Image:
    im = Image.open(path)
    im.load()
    im = im.convert("RGB")
    if transform == "down512":
        s = 512 / max(im.size)
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    elif transform == "crop384":
        w, h = im.size
        c = min(384, w, h)
        im = im.crop(((w - c) // 2, (h - c) // 2, (w - c) // 2 + c, (h - c) // 2 + c))
    return im


def label_image(im: Image.Image, *, with_avif: bool) -> dict:
    from precodec.metrics.ssimulacra2 import Ssimulacra2Reference
    from precodec.plugins import get_codec
    from precodec.tuners.space import BYTES_CONFIGS, CONFIGS, GRIDS, SCORE_CONFIGS

    ref = np.asarray(im)
    sref = Ssimulacra2Reference(ref)
    out: dict = {"width": im.width, "height": im.height, "scores": {}, "bytes": {}}
    fmts = ["jpeg"] + (["avif"] if with_avif else [])
    for fmt in fmts:
        grid = GRIDS[fmt]
        for name in BYTES_CONFIGS[fmt]:
            c = CONFIGS[name]
            codec = get_codec(c.backend)
            sizes, scores = [], []
            for q in grid:
                data = codec.encode(im, {**c.params, "quality": q})
                sizes.append(len(data))
                if name in SCORE_CONFIGS[fmt]:
                    dec = np.asarray(codec.decode(data).convert("RGB"))
                    scores.append(round(float(sref.score(dec)), 4))
            out["bytes"][name] = sizes
            if scores:
                out["scores"][name] = scores
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--limit", type=int, default=0, help="stop after this many items (0: all)")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            try:
                done.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                pass
    items = training_items()
    n = 0
    with open(args.out, "a") as f:
        for k, (iid, path, tr) in enumerate(items):
            if iid in done:
                continue
            t = time.perf_counter()
            im = load_item(path, tr)
            rec = {"id": iid, "index": k, **label_image(im, with_avif=(k % 3 == 0))}
            rec["seconds"] = round(time.perf_counter() - t, 2)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            n += 1
            print(f"{k} {iid} {rec['seconds']}s", flush=True)
            if args.limit and n >= args.limit:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
