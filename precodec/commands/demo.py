"""``precodec demo``: optimise the bundled sample and compare with a plain Pillow save."""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="optimise the bundled sample image and compare with a plain Pillow save")
    p.add_argument("--target", default="ssimulacra2:80", help="quality target (default ssimulacra2:80)")
    p.add_argument("--format", default="jpeg", choices=["jpeg", "avif"], help="output format")
    p.add_argument("-o", "--output", help="where to write the result (default: a temporary folder)")
    return p


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    import precodec
    from precodec.metrics import score
    from precodec.targets import Target

    src = precodec.sample_path()
    tgt = Target.parse(args.target)
    with Image.open(src) as im:
        im.load()
        ref = im.convert("RGB")
    # the usual plain save: Pillow's defaults for the format
    buf = io.BytesIO()
    ref.save(buf, args.format.upper(), **({"quality": 75} if args.format == "jpeg" else {}))
    plain = buf.getvalue()
    with Image.open(io.BytesIO(plain)) as d:
        plain_score = score(tgt.metric, ref, d.convert("RGB"))
    res = precodec.optimize(src, format=args.format, target=str(tgt), source=src)
    out = args.output or os.path.join(tempfile.mkdtemp(prefix="precodec-demo-"), "sample" + res.extension)
    res.save(out)
    w = sys.stdout.write
    w(f"sample: {src} ({ref.width}x{ref.height})\n")
    w(f"plain Pillow save ({args.format}, default settings): {len(plain):>8} bytes  {tgt.metric} {plain_score:6.2f}\n")
    q = res.quality.get(tgt.metric, float('nan'))
    w(f"precodec (target {tgt}):{' ' * max(1, 25 - len(str(tgt)))}{res.size:>8} bytes  {tgt.metric} {q:6.2f}  "
      f"params {res.params}\n")
    saving = 1 - res.size / len(plain)
    w(f"saved {saving:+.1%} against the plain save; {res.record.encodes} encodes; wrote {out}\n")
    return 0
